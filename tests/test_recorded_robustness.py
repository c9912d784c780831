"""The records shipped in recorded_robustness/, checked against the models shipped beside them: every file reads, each
shipped model has exactly one record, of its own model file, and each record is internally sound (the issue's ε, PGD
never above FGSM, accuracy never rising with ε). Retraining the shipped models without recording again fails here."""

from __future__ import annotations

from fmnist_core.evaluate.attack import GREY_LEVELS, ROBUSTNESS_LEVELS
from fmnist_core.evaluate.robustness import recorded
from fmnist_core.paths import PROJECT_ROOT, RECORDED_ROBUSTNESS_FOLDER, SHIPPED_MODELS_FOLDER
from fmnist_core.store.cache import ModelCache

RECORDED = PROJECT_ROOT / RECORDED_ROBUSTNESS_FOLDER


def test_each_shipped_model_has_one_sound_record_of_its_own_file(tmp_path):
    records, problems = recorded(RECORDED)
    assert problems == []
    shipped = ModelCache(tmp_path / "empty-user-cache", shipped_root=PROJECT_ROOT / SHIPPED_MODELS_FOLDER)
    entries = {entry.entry_id: entry for entry in shipped.list() if entry.ok}
    assert sorted(record.entry_id for record in records) == sorted(entries), "record each shipped model once"
    for record in records:
        entry = entries[record.entry_id]
        assert record.model_sha256 == entry.record.model_sha256, f"{record.entry_id}: recorded for another file"
        assert record.model == entry.model_name and record.title == entry.title
        assert record.epsilons == tuple(level / GREY_LEVELS for level in ROBUSTNESS_LEVELS)
        assert record.pgd_accuracy[0] == record.fgsm_accuracy[0]
        assert all(pgd <= fgsm for pgd, fgsm in zip(record.pgd_accuracy, record.fgsm_accuracy, strict=True))
        assert list(record.pgd_accuracy) == sorted(record.pgd_accuracy, reverse=True)
        assert record.images >= 100
