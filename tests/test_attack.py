"""Adversarial pictures (fmnist_core.evaluate.attack), on the session's tiny trained model loaded from its cache: the
fooled picture is a picture (in [0, 1]) within ε of the original and really fools the model loaded afresh; accuracy
under attack at ε = 0 is the plain accuracy; PGD is never weaker than FGSM; and the recorded-file format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_core.errors import ConfigError
from fmnist_core.evaluate import attack
from fmnist_core.evaluate.evaluation import predict_probabilities
from fmnist_core.evaluate.robustness import RobustnessRecord, measure, record_of, recorded
from fmnist_core.store.cache import ModelCache

EPSILONS = [level / 255 for level in (0, 1, 2, 4, 8, 16)]


@pytest.fixture(scope="module")
def cached_model(trained_cache_dir):
    """(cache, entry, attacker) of the session's tiny model, loaded through the cache as the app loads it."""
    cache = ModelCache(trained_cache_dir)
    (entry,) = cache.list()
    return cache, entry, attack.Attacker(cache.load_model(entry.entry_id))


def test_the_fooled_picture_is_a_picture_within_epsilon_that_fools_the_model_loaded_afresh(
    cached_model, tiny_data, tmp_path
):
    cache, entry, attacker = cached_model
    (_, _), (images, labels) = tiny_data
    for index in range(4):
        result = attack.smallest_change(attacker, images[index], int(labels[index]))
        assert result.fooled and result.adversarial.dtype == np.float32 and result.adversarial.shape == (28, 28)
        assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
        assert np.array_equal(result.original, images[index] / np.float32(255))
        assert 0 < result.epsilon <= result.budget_levels / 255 + 1e-6
        assert result.budget_levels in attack.SEARCH_LEVELS
        # Saved and read back as the CLI writes it, then shown to a model freshly loaded from the cache.
        np.save(tmp_path / "adversarial.npy", result.adversarial)
        fresh = cache.load_model(entry.entry_id)
        before = predict_probabilities(fresh, images[index : index + 1]).argmax()
        after = predict_probabilities(fresh, np.load(tmp_path / "adversarial.npy")[None]).argmax()
        assert before == result.before[0].class_index and after == result.after[0].class_index
        assert after != before


def test_the_smallest_budget_is_the_smallest_that_fools(cached_model, tiny_data):
    """No budget of the search below the one found changes the answer (the search tries them all)."""
    _, _, attacker = cached_model
    (_, _), (images, labels) = tiny_data
    result = attack.smallest_change(attacker, images[0], int(labels[0]))
    smaller = [level for level in attack.SEARCH_LEVELS if level < result.budget_levels]
    if smaller:
        originals = np.repeat(result.original[None], len(smaller), axis=0)
        targets = np.full(len(smaller), result.before[0].class_index)
        _, fooled = attacker.fooled(originals, targets, np.array(smaller) / 255)
        assert not fooled.any()


def test_accuracy_under_attack_at_zero_is_the_plain_accuracy_and_pgd_beats_fgsm(cached_model, tiny_data):
    _, _, attacker = cached_model
    (_, _), (images, labels) = tiny_data
    pgd, fgsm = measure(attacker, images, labels, EPSILONS)
    plain = float((predict_probabilities(attacker.model, images).argmax(axis=1) == labels).mean())
    assert pgd.at(0.0) == plain == fgsm.at(0.0) and plain > 0.2  # Above chance (0.1).
    assert pgd.steps == attack.STEPS and fgsm.steps == 1 and pgd.images == len(images)
    for epsilon in EPSILONS:
        assert pgd.at(epsilon) <= fgsm.at(epsilon), epsilon
    assert list(pgd.accuracy) == sorted(pgd.accuracy, reverse=True)  # A larger budget never helps the model.
    assert pgd.at(EPSILONS[-1]) < plain  # The attack does something.


def test_a_mirror_averaged_bfloat16_model_is_attacked_through_a_float32_copy_and_judged_as_saved(tiny_spec):
    from fmnist_core.models.mirror import mirror_averaged
    from fmnist_core.models.registry import build_from_spec

    model = mirror_averaged(build_from_spec(tiny_spec, seed=1, precision="mixed_bfloat16"))
    attacker = attack.Attacker(model)
    assert attacker.copy is not model
    assert {layer.dtype_policy.name for layer in attack._all_layers(attacker.copy)} == {"float32"}
    pictures = np.random.default_rng(0).random((8, 28, 28), dtype=np.float32)
    saved, copied = predict_probabilities(model, pictures), predict_probabilities(attacker.copy, pictures)
    assert np.abs(saved - copied).max() < 0.05  # Same weights; only bfloat16's rounding differs.
    result = attack.smallest_change(attacker, pictures[0])
    if result.fooled:
        assert predict_probabilities(model, result.adversarial[None]).argmax() != result.before[0].class_index


@pytest.mark.parametrize("epsilon", [-0.01, 1.01, float("nan"), "0.1"])
def test_an_epsilon_outside_0_to_1_is_refused(cached_model, tiny_data, epsilon):
    _, _, attacker = cached_model
    (_, _), (images, labels) = tiny_data
    with pytest.raises(ConfigError, match="from 0 to 1"):
        attack.robust_accuracy(attacker, images[:4], labels[:4], [0, epsilon])


def test_the_change_picture_is_mid_grey_for_no_change_and_uses_the_whole_range():
    change = np.zeros((28, 28), np.float32)
    picture, scale = attack.change_picture(change)
    assert scale == 0 and set(np.unique(picture)) == {128}
    change[0, 0], change[1, 1] = 2 / 255, -1 / 255
    picture, scale = attack.change_picture(change)
    assert scale == pytest.approx(2 / 255) and picture[0, 0] == 255 and picture[1, 1] == 64


def test_a_robustness_record_round_trips_and_a_damaged_one_is_named(cached_model, tiny_data, tmp_path):
    _, entry, attacker = cached_model
    (_, _), (images, labels) = tiny_data
    pgd, fgsm = measure(attacker, images[:16], labels[:16], EPSILONS[:3])
    record = record_of(entry, pgd, fgsm, "a test machine", "2026-12-08T01:00:00+00:00", "pytest")
    (tmp_path / "good.json").write_text(json.dumps(record.to_dict()))
    assert RobustnessRecord.from_dict(record.to_dict()) == record
    broken = record.to_dict() | {"pgd_accuracy": [1.0, 0.5]}
    (tmp_path / "short.json").write_text(json.dumps(broken))
    (tmp_path / "bad.json").write_text("{")
    records, problems = recorded(tmp_path)
    assert records == [record]
    assert [problem.split(":")[0] for problem in problems] == ["bad.json", "short.json"]
    assert "one accuracy per ε" in problems[1]
