"""The sweeps shipped in the repository's recorded_sweeps/, checked against what ships beside them: each reads without a
problem, and a sweep of the shipped models' preset quotes, for the default seed, exactly the shipped models with their
recorded test accuracy. So retraining the shipped models (`make models`) without sweeping again fails here, by name.
"""

from __future__ import annotations

from fmnist_core.config import get_preset
from fmnist_core.paths import PROJECT_ROOT, RECORDED_SWEEPS_FOLDER, SHIPPED_MODELS_FOLDER
from fmnist_core.store.cache import ModelCache
from fmnist_core.store.shipping import SHIPPED_MODELS, SHIPPED_PRESET
from fmnist_core.sweep.report import matches
from fmnist_core.sweep.result import load_sweeps

RECORDED = PROJECT_ROOT / RECORDED_SWEEPS_FOLDER


def test_the_recorded_sweeps_read_and_one_covers_the_shipped_models_preset(tmp_path):
    sweeps, problems = load_sweeps(tmp_path / "empty-user-cache", RECORDED)
    assert problems == []
    assert sweeps and all(sweep.recorded for sweep in sweeps)
    preset = get_preset(SHIPPED_PRESET)
    shipped_preset_sweeps = [sweep for sweep in sweeps if sweep.preset == SHIPPED_PRESET and matches(sweep, preset)]
    assert shipped_preset_sweeps, f"no sweep of the {SHIPPED_PRESET!r} preset as it is now in {RECORDED}"
    for sweep in shipped_preset_sweeps:
        assert {summary.model for summary in sweep.models} == set(SHIPPED_MODELS)
        assert len(sweep.runs) == len(sweep.seeds) * len(SHIPPED_MODELS) and preset.seed in sweep.seeds


def test_the_shipped_preset_sweep_quotes_the_shipped_models_for_the_default_seed(tmp_path):
    shipped = ModelCache(tmp_path / "empty-user-cache", shipped_root=PROJECT_ROOT / SHIPPED_MODELS_FOLDER)
    preset = get_preset(SHIPPED_PRESET)
    by_model = {entry.record.spec.name: entry for entry in shipped.list() if entry.ok}
    sweeps, _ = load_sweeps(tmp_path / "empty-user-cache", RECORDED)
    for sweep in (sweep for sweep in sweeps if matches(sweep, preset)):
        for run in (run for run in sweep.runs if run.seed == preset.seed):
            entry = by_model[run.model]
            assert run.entry_id == entry.entry_id, f"{sweep.sweep_id}: {run.title} is not the shipped model"
            assert run.test_accuracy == entry.record.test_accuracy
