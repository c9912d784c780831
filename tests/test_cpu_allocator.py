"""TensorFlow's CPU tensors come from its pooling (BFC) allocator unless the user chose otherwise, and every
training run records which one it had: the speed figures depend on it (README, "Float32 without native bfloat16")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_core.machine import CPU_ALLOCATOR_VARIABLE, cpu_allocator

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("value", "allocator"),
    [(None, "malloc"), ("true", "bfc"), ("1", "bfc"), (" TRUE ", "bfc"), ("false", "malloc"), ("0", "malloc")],
)
def test_the_allocator_in_use_is_read_from_tensorflows_variable(monkeypatch, value, allocator):
    if value is None:
        monkeypatch.delenv(CPU_ALLOCATOR_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(CPU_ALLOCATOR_VARIABLE, value)
    assert cpu_allocator() == allocator


ASK = "from fmnist_core.machine import cpu_allocator, import_tensorflow; import_tensorflow(); print(cpu_allocator())"


@pytest.mark.slow  # Starts Python processes that import TensorFlow.
@pytest.mark.parametrize(("chosen", "allocator"), [(None, "bfc"), ("false", "malloc"), ("true", "bfc")])
def test_importing_tensorflow_turns_the_pool_on_unless_the_user_chose(chosen, allocator):
    environment = {key: value for key, value in os.environ.items() if key != CPU_ALLOCATOR_VARIABLE}
    if chosen is not None:
        environment[CPU_ALLOCATOR_VARIABLE] = chosen
    finished = subprocess.run(
        [sys.executable, "-c", ASK], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip() == allocator
