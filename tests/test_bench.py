"""The throughput benchmark: both training paths really run and the figures it prints follow from its timings."""

from __future__ import annotations

import math

import pytest

from fmnist_core.cli import main
from fmnist_core.training.bench import run_bench


@pytest.mark.parametrize("arguments", [["--models", "model9"], ["--images", "10"], ["--repeats", "0"]])
def test_bench_refuses_bad_arguments_with_exit_code_2(arguments, capsys):
    assert main(["bench", *arguments]) == 2
    assert capsys.readouterr().err.strip()


@pytest.mark.slow  # Runs the benchmark: both training paths, twice, plus the matmul peak.
@pytest.mark.parametrize(("bfloat16_fast", "precision"), [(True, "mixed_bfloat16"), (False, "float32")])
def test_bench_times_both_paths_and_derives_ratio_and_peak_share(tiny_data, monkeypatch, bfloat16_fast, precision):
    # Without settings the fast path trains in the precision this machine trains fast in (config.for_this_machine).
    monkeypatch.setattr("fmnist_core.machine.bfloat16_is_fast", lambda: bfloat16_fast)
    lines = []
    result = run_bench(["model1"], images=512, repeats=2, data=tiny_data, log=lines.append)
    (model,) = result["models"]
    assert result["images_per_run"] == model["images"] == 512
    assert model["fast"]["precision"] == result["fast_path"]["precision"] == precision
    assert model["fast"]["batch_size"] == 256
    assert model["plain"]["precision"] == "float32" and model["plain"]["batch_size"] == 32
    for path in ("fast", "plain"):
        runs = model[path]["runs"]
        assert len(runs) == 2 and all(math.isfinite(rate) and rate > 0 for rate in runs)
    assert model["speedup"] == pytest.approx(model["fast_median"] / model["plain_median"])
    assert all(peak > 1 for peak in result["peak_gflops"].values())
    # Training FLOPs (3 × forward) per second over the measured peak of its precision: a share, between 0 and 1.
    achieved = model["fast_median"] * model["forward_flops"] * 3 / 1e9
    peak = result["peak_gflops"]["bfloat16" if bfloat16_fast else "float32"]
    assert model["fast_peak_share"] == pytest.approx(achieved / peak)
    assert 0 < model["fast_peak_share"] < 1 and 0 < model["plain_peak_share"] < 1
    assert any("model1 run 2/2" in line for line in lines)
