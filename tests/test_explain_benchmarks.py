"""The two explanation benchmarks run end to end on a tiny cached model and print their tables."""

from __future__ import annotations

import re

import pytest

from benchmarks import explain_speed, saliency_faithfulness
from fmnist_core.explain.faithfulness import BASELINES
from fmnist_core.explain.inside import SALIENCY_METHODS
from tests.conftest import require_real_data

pytestmark = pytest.mark.realdata


@pytest.fixture
def entry_id(trained_cache) -> str:
    require_real_data()
    return next(path.name for path in trained_cache.iterdir() if path.name.startswith("model1-"))


def test_speed_benchmark_times_every_view_against_its_target(entry_id, capsys):
    assert explain_speed.main(["--entry", entry_id, "--images", "30", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for view in ("first-layer filters", "image: answer, feature maps, saliency", "saliency for another class"):
        assert re.search(rf"Model 1 +{re.escape(view)} +\d+\.\d{{3}}  ≤ 1 s (ok|over)", out), view
    assert re.search(r"embedding map of 30 images +\d+\.\d{3}  ≤ 3 s (ok|over)", out)
    assert "(once) wire it for explanation" in out and "filter redundancy" in out
    assert re.search(r"\nModel 1 +8 +\d+ +\d+ +\d+ +\d+\.\d +\d+ +\d\.\d\d\n", out), "the redundancy table"


def test_faithfulness_benchmark_prints_every_method_and_both_baselines(entry_id, capsys):
    assert saliency_faithfulness.main(["--entry", entry_id, "--images", "20", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "Deletion test on 20 test images" in out
    for method in SALIENCY_METHODS:
        assert re.search(rf"Model 1 +{method} +\d\.\d{{3}} +\d+% +\d+%", out), method
    for baseline in BASELINES:
        assert re.search(rf"Model 1 +{baseline} +\d\.\d{{3}} +— +—", out), baseline


@pytest.mark.parametrize("benchmark", [explain_speed, saliency_faithfulness])
def test_benchmarks_say_when_nothing_is_cached(benchmark, cache_dir, capsys):
    assert benchmark.main(["--preset", "full"]) == 1
    assert "No cached 'full' models: train one first" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main(["--images", "0"])
