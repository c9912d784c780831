"""The Keras 3 backends a race lane can run on: TensorFlow, JAX and PyTorch.

Keras 3 runs the same model on each, so a race lane, which is its own process, can pick its backend: many GPU
machines have PyTorch or JAX but no TensorFlow (TensorFlow's GPU build needs Linux and CUDA 12). Whether a backend
is installed is looked up without importing it, so asking stays instant and never starts a framework.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from fmnist_core.errors import ConfigError


@dataclass(frozen=True)
class Backend:
    """One Keras backend as the race uses it."""

    name: str  # The KERAS_BACKEND value and the CLI name: "tensorflow", "jax", "torch".
    title: str  # What a person reads: "TensorFlow", "JAX", "PyTorch".
    module: str  # The package Keras imports for it.
    install: str  # How to get it (Markdown: commands in backticks).
    # Compilation per backend, set explicitly (Keras' "auto" differs per backend). TensorFlow: XLA off, ~2× slower
    # on this project's CPU. JAX: on; without jit Keras runs JAX op by op, which is not how JAX is used. PyTorch:
    # off; jit_compile means torch.compile there, minutes of compiling and what Keras' "auto" also leaves off.
    jit_compile: bool
    # Whether this backend's CPU path trains faster in bfloat16 where the CPU computes it natively (AVX512-BF16,
    # AMX); on other CPUs every backend's lane runs float32 (fastest_precision). TensorFlow: yes, 1.5-2× (config.py).
    # JAX and PyTorch: no evidence that they gain. The shipped race (recorded_races/, a Xeon with native bfloat16)
    # has JAX's 2-core CPU lane at 281 images/s and PyTorch's at 725 in bfloat16 against TensorFlow's 2,394; their
    # float32 there is unmeasured, so they keep float32 until a measurement shows a gain (docs/results/race.md).
    cpu_bfloat16: bool

    @property
    def installed(self) -> bool:
        """True when the package can be imported here (found on the path; it is not imported)."""
        return importlib.util.find_spec(self.module) is not None

    @property
    def missing_message(self) -> str:
        return f"{self.title} is not installed on this machine. Install it with {self.install}."


BACKENDS: dict[str, Backend] = {
    "tensorflow": Backend(
        "tensorflow",
        "TensorFlow",
        "tensorflow",
        "`pip install -r requirements.txt`; its GPU build on Linux: `pip install 'tensorflow[and-cuda]'`",
        jit_compile=False,
        cpu_bfloat16=True,
    ),
    "jax": Backend(
        "jax",
        "JAX",
        "jax",
        "`pip install jax` (CPU); with an NVIDIA GPU: `pip install 'jax[cuda13]'`",
        jit_compile=True,
        cpu_bfloat16=False,
    ),
    "torch": Backend(
        "torch",
        "PyTorch",
        "torch",
        "`pip install torch` (on Linux a CUDA build of several GB; pytorch.org has the CPU-only wheel)",
        jit_compile=False,
        cpu_bfloat16=False,
    ),
}
DEFAULT_BACKEND = "tensorflow"


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"Unknown backend {name!r}. Valid backends: {', '.join(BACKENDS)}.") from None


def parse_backends(text: str) -> tuple[str, ...]:
    """'tensorflow,jax' → ('tensorflow', 'jax'); unknown, repeated or no names raise ConfigError."""
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"Backends must be distinct names among {', '.join(BACKENDS)} (got {text!r}).")
    for name in names:
        get_backend(name)
    return names


def require_installed(names: tuple[str, ...]) -> None:
    """ConfigError naming every backend in `names` that is not installed, with how to install it."""
    missing = [BACKENDS[name].missing_message for name in names if not BACKENDS[name].installed]
    if missing:
        raise ConfigError(" ".join(missing))


def fastest_precision(backend: str, device: str) -> str:
    """The precision a lane of `backend` on `device` ("CPU" or "GPU:<n>") computes fastest.

    A GPU: mixed bfloat16, as the project trains there (`machine.bfloat16_is_fast`). A CPU: mixed bfloat16 only
    where the CPU computes it natively and the backend's CPU path gains from it (`Backend.cpu_bfloat16`); float32
    elsewhere, where emulated bfloat16 trains Model 1 many times slower (docs/results/race.md).
    """
    from fmnist_core.machine import bfloat16_is_fast

    if device != "CPU":
        return "mixed_bfloat16"
    return "mixed_bfloat16" if get_backend(backend).cpu_bfloat16 and bfloat16_is_fast(on_cpu=True) else "float32"
