"""TensorFlow's CPU tensors come from its pooling (BFC) allocator unless the user chose otherwise, and every
training run records which one it had: the speed figures depend on it (docs/results/precision.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from benchmarks import allocator_speed
from devtools.browser_support import PROJECT_ROOT
from fmnist_core.machine import CPU_ALLOCATOR_VARIABLE, cpu_allocator
from tests.conftest import require_real_data


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


@pytest.mark.slow  # Runs the benchmark: two short trainings in their own processes.
@pytest.mark.realdata
def test_the_allocator_benchmark_trains_with_each_and_each_run_records_the_one_it_had(tmp_path, capsys):
    require_real_data()
    results = tmp_path / "allocator_speed.jsonl"
    arguments = ["--model", "model1", "--preset", "quick", "--epochs", "1", "--train-limit", "256", "--rounds", "1"]
    assert allocator_speed.main([*arguments, "--results", str(results)]) == 0
    out = capsys.readouterr().out
    for allocator in ("malloc", "bfc"):
        assert re.search(rf"round 1, +{allocator}: epochs \d+\.\d s, [\d,]+ img/s, final loss \d\.\d{{6}}", out)
    assert "final losses identical in every run" in out
    row = json.loads(results.read_text())
    assert [(run["allocator"], run["recorded_allocator"]) for run in row["runs"]] == [
        ("malloc", "malloc"),
        ("bfc", "bfc"),
    ]
    assert row["identical_losses"] is True and row["machine"]


@pytest.mark.parametrize("wrong", [["--rounds", "0"], ["--epochs", "0"], ["--train-limit", "-1"]])
def test_the_allocator_benchmark_refuses_settings_that_measure_nothing(wrong, capsys):
    with pytest.raises(SystemExit):
        allocator_speed.main(wrong)
    assert "--rounds and --epochs must be ≥ 1" in capsys.readouterr().err
