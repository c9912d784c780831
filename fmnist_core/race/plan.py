"""Which lanes a race has on this machine: each backend's GPUs (asked in a fresh process), the CPU lanes, and
the machine facts recorded with the race. The race's own process imports no backend.
"""

from __future__ import annotations

import platform
import subprocess

from fmnist_core.machine import host_info, package_version
from fmnist_core.race.backends import BACKENDS, DEFAULT_BACKEND
from fmnist_core.race.file import LaneResult
from fmnist_core.race.lane import Workload
from fmnist_core.race.lane_process import probe_backend


def no_gpu_reason(backend: str) -> str:
    """Why a backend's GPU lane cannot run here, and what to do instead."""
    title = BACKENDS[backend].title
    return (
        f"{title} sees no GPU on this machine (a CPU-only build of {title}, or no NVIDIA GPU and driver). A GPU runs "
        "the convolutions of Model 1 in parallel across thousands of cores; record a race on a GPU machine "
        "(`python -m fmnist_core race --backend jax --out race.json`, or scripts/gpu_race.sh) and replay it here."
    )


RECORDED = "the recording machine"  # Where a recorded race's lanes ran, or could not.


def unavailable_note(lane: LaneResult, machine: str = "this machine") -> str:
    """A lane that could not run, in one short line: 'no GPU on the recording machine' (machine: where it was to
    run); the full reason, with what to do, stays in the race file and the summary."""
    reason = lane.unavailable_reason or "did not run"
    if lane.kind == "gpu" and "sees no GPU" in reason:
        return f"no GPU on {machine}"
    return reason.split(". ")[0].rstrip(".").replace("this machine", machine)


def _nvidia_smi() -> list[dict]:
    """GPU name, total memory and driver per nvidia-smi ([] without it): the backends do not all report them."""
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [[part.strip() for part in line.split(",")] for line in output.splitlines() if line.count(",") == 2]
    return [
        {"name": name, "memory_mib": int(memory) if memory.isdigit() else None, "driver": driver}
        for name, memory, driver in rows
    ]


def race_machine(backends: tuple[str, ...] = (DEFAULT_BACKEND,), probe_gpus: bool = True, should_stop=None) -> dict:
    """The machine a race runs on: host, library versions, nvidia-smi's GPUs and driver, and per backend its
    version and (probe_gpus: asked in a fresh process, seconds per backend) the GPUs it sees.

    This process imports no backend: the lanes do, each its own.
    """
    versions = {
        "python": platform.python_version(),
        "numpy": package_version("numpy"),
        "keras": package_version("keras"),
    }
    found = {}
    for name in backends:
        versions[name] = package_version(name)
        found[name] = probe_backend(name, should_stop) if probe_gpus else {"version": versions[name]}
    smi = _nvidia_smi()
    gpus = smi or next((facts["gpus"] for facts in found.values() if facts.get("gpus")), [])
    return {**host_info(), "versions": versions, "backends": found, "gpus": gpus, "nvidia_smi": smi}


def lane_label(backend: str, kind: str, cores: int, gpu: dict | None = None, gpus: int = 1) -> str:
    """'JAX · NVIDIA H200', 'TensorFlow · CPU, 2 cores', 'PyTorch · CPU, 1 core' ('JAX · GPU:1 · …' among several)."""
    title = BACKENDS[backend].title
    if kind == "gpu":
        if gpu is None:
            return f"{title} · GPU"
        return f"{title} · {gpu['id']} · {gpu['name']}" if gpus > 1 else f"{title} · {gpu['name']}"
    threads = cores if kind == "cpu-all" else 1
    return f"{title} · CPU, {threads} core{'s' if threads > 1 else ''}"


DEFAULT_WORKLOAD = Workload()


def plan_lanes(
    backends: tuple[str, ...],
    kinds: tuple[str, ...],
    backend_gpus: dict[str, list[dict]],
    cores: int,
    workload: Workload = DEFAULT_WORKLOAD,
) -> tuple[LaneResult, ...]:
    """The lanes of a race: per backend, in order, each lane kind; `backend_gpus` lists the GPUs each one sees.

    Each lane gets the precision it runs in (`Workload.precision_for`: the race's, else its device's fastest)."""
    lanes = []
    for backend in backends:
        gpus = backend_gpus.get(backend, [])
        for kind in kinds:
            if kind == "gpu":
                lanes += [
                    LaneResult(
                        f"{backend}-gpu-{index}",
                        lane_label(backend, kind, cores, gpu, len(gpus)),
                        gpu["id"],
                        cores,
                        True,
                        None,
                        backend=backend,
                        kind=kind,
                        precision=workload.precision_for(backend, gpu["id"]),
                    )
                    for index, gpu in enumerate(gpus)
                ]
                if not gpus:
                    label = lane_label(backend, kind, cores)
                    reason = no_gpu_reason(backend)
                    lanes.append(
                        LaneResult(f"{backend}-gpu", label, "GPU", cores, False, reason, backend=backend, kind=kind)
                    )
            else:
                threads = cores if kind == "cpu-all" else 1
                label = lane_label(backend, kind, cores)
                precision = workload.precision_for(backend, "CPU")
                lanes.append(
                    LaneResult(
                        f"{backend}-{kind}",
                        label,
                        "CPU",
                        threads,
                        True,
                        None,
                        backend=backend,
                        kind=kind,
                        precision=precision,
                    )
                )
    return tuple(lanes)
