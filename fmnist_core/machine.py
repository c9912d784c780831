"""Facts about the machine and libraries, recorded with every result so numbers can be compared honestly."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import threading
from functools import lru_cache

# Held while TensorFlow or Keras is imported (re-entrant: import_keras imports TensorFlow first).
_IMPORT_LOCK = threading.RLock()


# TensorFlow's CPU tensors come from malloc by default, and glibc serves every block over 32 MB (Model 3's 28×28×256
# maps are 205 MB a batch) with a fresh mapping, handed back when freed, so each step faults them in again. From
# TensorFlow's own pooling (BFC) allocator instead, Model 3's float32 epochs took 48.4 s against 57.2 s on a 2-core
# AVX2 VM, with identical losses; Model 1 at batch 64 (12.8 MB maps) was unchanged (`benchmarks/allocator_speed.py`,
# docs/results/precision.md). Set before TensorFlow's import; a user's own setting (TF_CPU_ALLOCATOR_USE_BFC=false)
# wins.
CPU_ALLOCATOR_VARIABLE = "TF_CPU_ALLOCATOR_USE_BFC"


def cpu_allocator() -> str:
    """Where TensorFlow's CPU tensors come from in this process: "bfc" (TensorFlow's pool) or "malloc"."""
    return "bfc" if os.environ.get(CPU_ALLOCATOR_VARIABLE, "").strip().lower() in ("true", "1") else "malloc"


def _import_silently():
    # TensorFlow's C++ start-up lines ("oneDNN custom operations are on", "failed call to cuInit" on a machine
    # without a GPU) are written before its log level applies, so they are dropped at the file-descriptor
    # level. Python exceptions are unaffected: a failed import still raises.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault(CPU_ALLOCATOR_VARIABLE, "true")
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow(threads: int | None = None):
    """Import TensorFlow quietly; `threads` caps its thread pools (only before TF first runs anything).

    One thread at a time: the app's sessions run in threads, and two first imports at once could hand one of them
    a half-imported TensorFlow or leave stderr pointing at /dev/null (`_import_silently` swaps the process's fd 2).
    """
    with _IMPORT_LOCK:
        if "tensorflow" not in sys.modules:
            _import_silently()
        import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TF already started; the caller records the threads it actually runs with.
    return tf


def keras_backend() -> str:
    """The Keras backend this process will use: KERAS_BACKEND, else Keras' default, TensorFlow."""
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def import_keras():
    """Import Keras for this process's backend, TensorFlow quietly first when that is the backend.

    Under another backend (a JAX or PyTorch race lane) TensorFlow is never imported: nothing on that path
    needs it, and the machines those lanes are for often do not have it.
    """
    with _IMPORT_LOCK:
        if keras_backend() == "tensorflow":
            import_tensorflow()
        import keras

    return keras


def package_version(distribution: str) -> str | None:
    """The installed version of a pip distribution, read from its metadata without importing it."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where available."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# CPU flags (Linux /proc/cpuinfo) that compute bfloat16 natively. Without them TensorFlow's bfloat16 convolution
# gradients fall back to a slow path: on a 2-core AMD EPYC VM with AVX but no AVX2 or AVX-512, one conv gradient
# (128×28×28×64, 3×3×64) took 3.92 s in bfloat16 and 0.20 s in float32, and Model 1 trained at 51 img/s in
# bfloat16 against 376 in float32 (medians of 2, `benchmarks/precision_speed.py`, 2026-12-01).
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo; None where the system does not say (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


NVIDIA_GPUS = "/proc/driver/nvidia/gpus"  # One folder per GPU the NVIDIA driver runs (Linux).


def nvidia_gpu_present() -> bool:
    """Whether the NVIDIA driver reports a GPU, read without importing TensorFlow (pages call this)."""
    try:
        return any(os.scandir(NVIDIA_GPUS))
    except OSError:
        return False


def native_bfloat16_flags() -> tuple[str, ...]:
    """The NATIVE_BFLOAT16_FLAGS this CPU has (none where its flags are unknown)."""
    flags = cpu_flags() or frozenset()
    return tuple(flag for flag in NATIVE_BFLOAT16_FLAGS if flag in flags)


@lru_cache(maxsize=2)
def bfloat16_is_fast(on_cpu: bool = False) -> bool:
    """Whether bfloat16 mixed precision trains fast here: a CPU with native bfloat16, or an NVIDIA GPU.

    on_cpu: asked for work kept on the CPU (a race's CPU lane on a GPU machine), where only the CPU's flags count.
    Where the CPU's flags are unknown it answers False: float32 is never much slower, bfloat16 can be 7× slower.
    """
    return bool(native_bfloat16_flags()) or (not on_cpu and nvidia_gpu_present())


def usable_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def process_alive(pid: int) -> bool:
    """True when a process with this pid exists (used to tell stale lock/marker files from live ones)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # It exists but belongs to another user.
    return True


def memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def gpu_devices() -> list[dict]:
    """GPUs TensorFlow can see, with name and memory where the driver reports them."""
    tf = import_tensorflow()
    devices = []
    for index, device in enumerate(tf.config.list_physical_devices("GPU")):
        details = {}
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            pass
        devices.append(
            {
                "id": f"GPU:{index}",
                "name": details.get("device_name", device.name),
                "compute_capability": ".".join(map(str, details.get("compute_capability", ()))) or None,
            }
        )
    return devices


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of the libraries that change numbers (TF and Keras are imported)."""
    tf = import_tensorflow()
    import keras
    import numpy

    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
    }


def host_info() -> dict:
    """The machine without its libraries: name, OS, CPU, usable cores, memory (imports nothing)."""
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_cores": usable_cores(),
        "memory_gib": memory_gib(),
    }


def machine_info(include_gpus: bool = True) -> dict:
    """A JSON-ready description of this machine and its TensorFlow (imported), as training records it."""
    info = {**host_info(), "versions": library_versions()}
    if include_gpus:
        info["gpus"] = gpu_devices()
    return info
