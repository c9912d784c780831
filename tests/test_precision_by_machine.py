"""`bench` and `sweep` choose their precision by machine (config.for_this_machine) unless the user chose one."""

from __future__ import annotations

import pytest

from fmnist_core import machine
from fmnist_core.cli import main
from fmnist_core.config import PRESETS, TrainConfig


@pytest.fixture
def bfloat16_fast(monkeypatch):
    """Set whether this 'machine' computes bfloat16 fast (natively, with the flag named) or not."""

    def choose(fast: bool) -> None:
        monkeypatch.setattr(machine, "bfloat16_is_fast", lambda: fast)
        monkeypatch.setattr(machine, "native_bfloat16_flags", lambda: ("avx512_bf16",) if fast else ())

    return choose


@pytest.fixture
def recorded_bench(monkeypatch):
    """`run_bench` replaced by one that records the settings it was given and returns a result of its shape."""
    given = []

    def fake_run_bench(names, images, repeats, config, log):
        given.append(config)
        timing = {"median": 100.0}
        row = {"model": names[0], "fast_median": 300.0, "plain_median": 100.0, "speedup": 3.0}
        return {
            "fast_path": {"precision": config.precision, "batch_size": config.batch_size, "jit_compile": False},
            "peak_gflops": {"float32": 60.0, "bfloat16": 60.0},
            "models": [{**row, "fast": timing, "plain": timing, "fast_peak_share": 0.5, "plain_peak_share": 0.2}],
        }

    monkeypatch.setattr("fmnist_core.cli.bench_command.run_bench", fake_run_bench)
    return given


@pytest.mark.parametrize(
    ("fast", "precision", "reason"),
    [(True, "mixed_bfloat16", "computes bfloat16 natively (avx512_bf16)"), (False, "float32", "no native bfloat16")],
)
def test_bench_races_the_precision_this_machine_trains_in_and_says_why(
    bfloat16_fast, recorded_bench, capsys, fast, precision, reason
):
    bfloat16_fast(fast)
    assert main(["bench", "--models", "model1", "--images", "256", "--repeats", "1"]) == 0
    assert recorded_bench == [TrainConfig(precision=precision)]
    out = capsys.readouterr().out
    assert f"Fast path in {precision}: this CPU" in out and reason in out
    assert f"fast path: {precision} (this CPU" in out
    assert "plain: float32 (what a Keras tutorial trains in)" in out


@pytest.mark.parametrize("fast", [True, False])
def test_bench_keeps_a_chosen_precision_and_says_it_was_chosen(bfloat16_fast, recorded_bench, capsys, fast):
    bfloat16_fast(fast)
    assert main(["bench", "--models", "model1", "--images", "256", "--precision", "mixed_bfloat16", "--json"]) == 0
    assert recorded_bench == [TrainConfig(precision="mixed_bfloat16")]
    assert '"precision_reason": "chosen with --precision"' in capsys.readouterr().out


@pytest.mark.parametrize(("fast", "given"), [(True, None), (False, None), (False, "mixed_bfloat16")])
def test_sweep_trains_this_machines_precision_unless_chosen(bfloat16_fast, cache_dir, monkeypatch, capsys, fast, given):
    bfloat16_fast(fast)
    swept = []

    def fake_run_sweep(specs, config, seeds, preset, **unused):
        swept.append((config, preset))
        raise KeyboardInterrupt  # Ends the command here, as Ctrl-C would, before anything trains.

    monkeypatch.setattr("fmnist_core.sweep.runner.run_sweep", fake_run_sweep)
    arguments = ["sweep", "--models", "model1", "--seeds", "2", "--preset", "class"]
    assert main(arguments + (["--precision", given] if given else [])) == 130
    expected = "float32" if given is None and not fast else "mixed_bfloat16"
    assert swept == [(PRESETS["class"].replace(precision=expected), "class")], "still the class preset"
    note = "note: Training in float32: this CPU has no native bfloat16" in capsys.readouterr().err
    assert note is (expected == "float32")
