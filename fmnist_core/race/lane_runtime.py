"""Inside a race lane process: what differs between the Keras backends.

The order is fixed here, because each step only works before the next: the CPU affinity is set and, for JAX and
PyTorch, TensorFlow is made unimportable (Keras would otherwise import it whenever it is installed, e.g. to seed
it); then the backend is imported and its thread pools capped before it runs anything; then it is asked which
device it uses. The parent process chose the device through the environment (race_lane._lane_environment): a
GPU lane sees exactly one GPU, a CPU lane none.

Each backend also says how the lane's clock waits for the device (`synchronize`), recorded with the result:
GPUs run asynchronously, and a clock read when the work was merely queued would stop early.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from fmnist_core.errors import FmnistError
from fmnist_core.machine import import_tensorflow, package_version


class LaneError(FmnistError):
    """A lane process failed; the message carries its own explanation or the end of its error output."""


@dataclass(frozen=True)
class LaneBackend:
    """A started backend: how to wait for its device, and what it reports about itself."""

    name: str
    synchronize: Callable[[object], None]  # Blocks until all queued device work is done (arg: JAX's model state).
    sync_method: str  # How the clock waits for the device, in words (recorded).
    facts: dict  # Backend version, device name, CUDA/cuDNN where a GPU is used, the thread limits read back.


def pin_cores(threads: int) -> int:
    """Restrict this process to `threads` cores before any backend starts its threads; returns the core count.

    Affinity is the one limit every backend obeys (XLA's CPU thread flags are not reliable): threads created
    later inherit it, so however many a library starts, they share these cores.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if threads < len(allowed):
        os.sched_setaffinity(0, allowed[:threads])
    return len(os.sched_getaffinity(0))


def block_tensorflow() -> None:
    """Make `import tensorflow` fail in a lane that does not run on it; Keras then treats TensorFlow as absent.

    A None entry in sys.modules is Python's documented way to stop an import (ImportError), and find_spec
    then reports the module as not found instead of raising.
    """
    if "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None:
        raise LaneError("TensorFlow was imported before the lane could keep it out.")
    sys.modules["tensorflow"] = None


def start(backend: str, device: str, threads: int) -> LaneBackend:
    """Limit this process to `threads` cores, start `backend` on `device` ("CPU" or "GPU:<n>"), and report it.

    Raises LaneError when the backend does not see the GPU the lane is for.
    """
    cores = pin_cores(threads)
    if backend != "tensorflow":
        block_tensorflow()
    started = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}[backend](device != "CPU", threads)
    return LaneBackend(started.name, started.synchronize, started.sync_method, {**started.facts, "cpu_cores": cores})


def _no_gpu(title: str) -> LaneError:
    return LaneError(
        f"{title} sees no GPU in the lane process (a CPU-only build of {title}, or no working CUDA driver)."
    )


def _tensorflow(gpu: bool, threads: int) -> LaneBackend:
    tf = import_tensorflow(threads)
    gpus = tf.config.list_physical_devices("GPU")
    facts = {"backend_version": tf.__version__, "device_name": "CPU"}
    if not gpu:
        tf.config.set_visible_devices([], "GPU")
    elif not gpus:
        raise _no_gpu("TensorFlow")
    else:
        tf.config.set_visible_devices(gpus[:1], "GPU")
        # Growing on demand keeps another process's memory use from making this lane fail at start-up.
        tf.config.experimental.set_memory_growth(gpus[0], True)
        build = tf.sysconfig.get_build_info()
        details = tf.config.experimental.get_device_details(gpus[0])
        facts.update(
            device_name=details.get("device_name", "GPU"),
            cuda=build.get("cuda_version"),
            cudnn=build.get("cudnn_version"),
        )
    facts.update(
        thread_limit="CPU affinity and TensorFlow's intra-/inter-op thread pools",
        intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
    )
    return LaneBackend(
        "tensorflow",
        lambda state: tf.test.experimental.sync_devices(),
        "the step's loss copied to the host, then tf.test.experimental.sync_devices()",
        facts,
    )


def _jax(gpu: bool, threads: int) -> LaneBackend:  # noqa: ARG001  (affinity alone limits XLA's threads)
    import jax

    device = jax.devices()[0]  # The parent's JAX_PLATFORMS makes this the GPU, or the CPU on a CPU lane.
    if gpu and device.platform != "gpu":
        raise _no_gpu("JAX")
    facts = {
        "backend_version": jax.__version__,
        "device_name": device.device_kind if gpu else "CPU",
        "thread_limit": "CPU affinity",  # XLA sizes its CPU pool itself; its threads share the pinned cores.
    }
    if gpu:
        plugin = package_version("jax-cuda13-plugin") or package_version("jax-cuda12-plugin")
        facts.update(cuda_plugin=plugin, **_jax_cuda_versions())

    def synchronize(state) -> None:
        if state is not None:
            jax.block_until_ready(state)

    return LaneBackend(
        "jax", synchronize, "the step's loss copied to the host, then jax.block_until_ready on the model's state", facts
    )


def _jax_cuda_versions() -> dict:
    """CUDA runtime and cuDNN versions JAX's CUDA plugin reports ({} where this jaxlib does not say)."""
    try:
        from jax._src.lib import cuda_versions  # Private, but the only place JAX reports them.

        return {"cuda": str(cuda_versions.cuda_runtime_get_version()), "cudnn": str(cuda_versions.cudnn_get_version())}
    except (ImportError, AttributeError, RuntimeError):
        return {}


def _torch(gpu: bool, threads: int) -> LaneBackend:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # Only settable before PyTorch's first parallel work; the facts record what it really uses.
    facts = {
        "backend_version": torch.__version__,
        "device_name": "CPU",
        "thread_limit": "CPU affinity and torch.set_num_threads / set_num_interop_threads",
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
    }
    if not gpu:
        # PyTorch runs CPU operations synchronously: when the loss is on the host, the step is done.
        return LaneBackend("torch", lambda state: None, "the step's loss copied to the host (CPU: synchronous)", facts)
    if not torch.cuda.is_available():
        raise _no_gpu("PyTorch")
    facts.update(
        device_name=torch.cuda.get_device_name(0),
        cuda=torch.version.cuda,
        cudnn=str(torch.backends.cudnn.version()),
    )
    return LaneBackend(
        "torch",
        lambda state: torch.cuda.synchronize(),
        "the step's loss copied to the host, then torch.cuda.synchronize()",
        facts,
    )


def weights_device(backend: str, value) -> str:
    """Where a weight lives as "CPU:0" or "GPU:0": proof that the lane used the device it claims."""
    if backend == "tensorflow":
        return value.device.rsplit("device:", 1)[-1]
    if backend == "jax":
        device = next(iter(value.devices()))
        return f"{'GPU' if device.platform == 'gpu' else 'CPU'}:{device.id}"
    return f"{'GPU' if value.device.type == 'cuda' else 'CPU'}:{value.device.index or 0}"


def probe(backend: str) -> dict:
    """The backend's version and the GPUs it sees (`race-probe`, run in a fresh process; Keras is not imported)."""
    if backend != "tensorflow":
        block_tensorflow()
    if backend == "tensorflow":
        from fmnist_core.machine import gpu_devices

        tf = import_tensorflow()
        return {"version": tf.__version__, "gpus": gpu_devices()}
    if backend == "jax":
        import jax

        try:
            gpus = jax.devices("gpu")
        except RuntimeError:  # No GPU platform: a CPU-only jaxlib, or no CUDA driver.
            gpus = []
        return {
            "version": jax.__version__,
            "gpus": [{"id": f"GPU:{i}", "name": d.device_kind} for i, d in enumerate(gpus)],
        }
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {
        "version": torch.__version__,
        "gpus": [{"id": f"GPU:{i}", "name": torch.cuda.get_device_name(i)} for i in range(count)],
    }
