"""`python -m fmnist_core attack` and `evaluate --gallery`, in-process on the session's tiny cached model and the real
test images: what they print, what they write, and that the written picture really fools the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fmnist_core.cli import main
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.evaluate.evaluation import predict_probabilities
from fmnist_core.store.cache import ModelCache
from tests.conftest import require_real_data

pytestmark = pytest.mark.realdata


@pytest.fixture
def test_set(trained_cache):
    require_real_data()
    _, (images, labels) = load_fashion_mnist()
    return images, labels


def fresh_model():
    cache = ModelCache()
    (entry,) = cache.list()
    return cache.load_model(entry.entry_id)


def test_attack_writes_a_picture_within_epsilon_that_fools_the_model(test_set, tmp_path, capsys):
    images, labels = test_set
    out = tmp_path / "slides"
    assert main(["attack", "--model", "model1", "--image", "test:3", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "model1" and printed["image"] == "test:3" and printed["label"] == int(labels[3])
    assert set(printed["files"]) == {"adversarial.npy", "original.png", "change.png", "fooled.png"}
    assert {path.name for path in out.iterdir()} == set(printed["files"])
    adversarial = np.load(out / "adversarial.npy")
    assert adversarial.dtype == np.float32 and adversarial.shape == (28, 28)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    distance = np.abs(adversarial - images[3] / np.float32(255)).max()
    assert distance == pytest.approx(printed["epsilon"], abs=1e-7) and 0 < printed["epsilon"] <= 1
    model = fresh_model()
    assert predict_probabilities(model, images[3:4]).argmax() == printed["before"]
    assert predict_probabilities(model, adversarial[None]).argmax() == printed["after"] != printed["before"]
    with Image.open(out / "change.png") as change:
        assert change.size == (280, 280)


def test_attack_refuses_an_image_past_the_end_of_the_test_set(test_set, tmp_path, capsys):
    assert main(["attack", "--model", "model1", "--image", "test:10000", "--out", str(tmp_path / "o")]) == 2
    assert "There is no test image 10000" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_attack_robustness_at_zero_is_the_accuracy_on_those_images(test_set, capsys):
    images, labels = test_set
    arguments = ["attack", "--model", "model1", "--robustness", "--epsilons", "0,0.016", "--images", "40", "--json"]
    assert main(arguments) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "model1" and printed["images"] == 40 and list(printed["accuracy"]) == ["0", "0.016"]
    plain = float((predict_probabilities(fresh_model(), images[:40]).argmax(axis=1) == labels[:40]).mean())
    assert printed["accuracy"]["0"] == plain >= printed["accuracy"]["0.016"]


@pytest.mark.parametrize("kind", ["confident-wrong", "ambiguous"])
def test_evaluate_gallery_lists_the_images(test_set, kind, capsys):
    images, labels = test_set
    cache = ModelCache()
    (entry,) = cache.list()
    assert main(["evaluate", "--entry", entry.entry_id, "--gallery", kind, "--top", "5", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == 5
    probabilities = predict_probabilities(fresh_model(), images)
    for row in printed:
        assert row["label"] == labels[row["index"]]
        assert row["predicted"] == probabilities[row["index"]].argmax()
        assert row["confidence"] == pytest.approx(probabilities[row["index"]].max(), abs=1e-6)
    if kind == "confident-wrong":
        assert all(row["label"] != row["predicted"] for row in printed)
        assert [row["confidence"] for row in printed] == sorted((row["confidence"] for row in printed), reverse=True)
        wrong = probabilities.argmax(axis=1) != labels
        assert printed[0]["confidence"] == pytest.approx(probabilities[wrong].max(axis=1).max(), abs=1e-6)
    else:
        assert set(printed[0]) == {"index", "label", "predicted", "confidence", "second", "margin"}
        assert [row["margin"] for row in printed] == sorted(row["margin"] for row in printed)
