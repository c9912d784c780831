"""Mirror averaging: the wrapped model answers with the mean over each picture and its mirror image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_core.machine import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from fmnist_core.models.mirror import backbone_of, is_mirror_averaged, mirror_averaged  # noqa: E402
from fmnist_core.models.registry import build_from_spec  # noqa: E402


@pytest.fixture(scope="module")
def backbone(tiny_spec):
    return build_from_spec(tiny_spec, seed=3, precision="mixed_bfloat16")


def _pictures(count: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, 28, 28, 1)).astype("float32")


def test_answer_is_the_mean_of_the_picture_and_its_mirror(backbone):
    pictures = _pictures()
    wrapped = mirror_averaged(backbone)
    expected = (backbone(pictures, training=False).numpy() + backbone(pictures[:, :, ::-1], training=False).numpy()) / 2
    got = wrapped(pictures, training=False).numpy()
    assert got.shape == (5, 10) and got.dtype == np.float32
    # Each picture's pair goes through the backbone in one batch; bf16 rounding may differ by batch layout.
    np.testing.assert_allclose(got, expected, atol=2e-3)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    # It really averages two different answers: a picture and its mirror are scored differently.
    assert not np.allclose(backbone(pictures, training=False).numpy(), got, atol=1e-3)


def test_a_picture_and_its_mirror_get_the_same_answer(backbone):
    pictures = _pictures(seed=1)
    wrapped = mirror_averaged(backbone)
    np.testing.assert_allclose(wrapped(pictures).numpy(), wrapped(pictures[:, :, ::-1].copy()).numpy(), atol=2e-3)


def test_one_picture_and_a_batch_give_the_same_answers(backbone):
    pictures = _pictures(seed=2)
    wrapped = mirror_averaged(backbone)
    batch = wrapped(pictures).numpy()
    for index in range(len(pictures)):
        np.testing.assert_allclose(wrapped(pictures[index : index + 1]).numpy()[0], batch[index], atol=2e-3)


def test_wrapping_shares_the_weights_and_keeps_the_name(backbone):
    wrapped = mirror_averaged(backbone)
    assert wrapped.name == backbone.name
    assert wrapped.count_params() == backbone.count_params()
    assert is_mirror_averaged(wrapped) and not is_mirror_averaged(backbone)
    assert backbone_of(wrapped) is backbone and backbone_of(backbone) is backbone


def test_saved_and_loaded_in_safe_mode_it_answers_the_same(backbone, tmp_path):
    wrapped = mirror_averaged(backbone)
    path = tmp_path / "model.keras"
    wrapped.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    pictures = _pictures(seed=4)
    np.testing.assert_array_equal(loaded(pictures).numpy(), wrapped(pictures).numpy())
    assert is_mirror_averaged(loaded)
    # No Lambda layer (which safe mode refuses): only registered classes are in the file.
    import zipfile

    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert "Lambda" not in json.dumps(config)


@pytest.fixture(scope="module")
def mirrored_cache_dir(tmp_path_factory, tiny_data, tiny_spec, tiny_config):
    """A cache holding one tiny model trained with augmentation (so saved mirror-averaged); trained once."""
    from fmnist_core.store.cache import ModelCache
    from fmnist_core.training.pipeline import train_and_cache

    folder = tmp_path_factory.mktemp("mirrored-cache")
    train_and_cache(tiny_spec, tiny_config.replace(augment=True), cache=ModelCache(folder), data=tiny_data)
    return folder


@pytest.fixture
def mirrored_cache(mirrored_cache_dir, cache_dir):
    """The mirror-averaged entry, in a private copy of that cache exported as FMNIST_CACHE_DIR."""
    import shutil

    from fmnist_core.store.cache import ModelCache

    shutil.copytree(mirrored_cache_dir, cache_dir)
    (entry,) = ModelCache(cache_dir).list()
    return entry


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
def test_a_model_trained_on_mirrored_pictures_is_saved_mirror_averaged_with_both_accuracies(mirrored_cache, tiny_data):
    from fmnist_core.evaluate.evaluation import evaluate
    from fmnist_core.store.cache import ModelCache

    entry = mirrored_cache
    model = ModelCache().load_model(entry.entry_id)
    assert is_mirror_averaged(model)
    (_, _), (x_test, y_test) = tiny_data
    # The recorded accuracy is the saved model's: what the app's evaluation and predictions use.
    assert evaluate(model, x_test, y_test).test_accuracy == pytest.approx(entry.record.test_accuracy, abs=1e-9)
    backbone = backbone_of(model)
    assert backbone is not model and not is_mirror_averaged(backbone)
    single = evaluate(backbone, x_test, y_test).test_accuracy
    assert entry.record.single_view_accuracy == pytest.approx(single, abs=1e-9)


def test_a_model_trained_without_mirrored_pictures_is_saved_as_trained(trained_cache_dir, tiny_config):
    """Never shown a mirrored picture, a model is misled by mirrors (benchmarks/mirror_views.py): no averaging."""
    from fmnist_core.store.cache import ModelCache

    assert not tiny_config.augment
    cache = ModelCache(trained_cache_dir)
    (entry,) = [entry for entry in cache.list() if entry.ok]
    assert not is_mirror_averaged(cache.load_model(entry.entry_id))
    assert entry.record.single_view_accuracy is None


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
def test_the_pages_say_the_model_averages_with_the_mirror_and_show_the_single_view_score(
    mirrored_cache, monkeypatch, tiny_data
):
    from streamlit.testing.v1 import AppTest

    import fmnist_app.common
    from tests.conftest import require_real_data

    monkeypatch.setattr(fmnist_app.common, "dataset_or_stop", lambda: tiny_data)
    predict = AppTest.from_file("../pages/predict.py", default_timeout=60).run()
    assert not predict.exception, predict.exception
    assert any(caption.value.startswith("Model 1: trained on mirrored pictures too") for caption in predict.caption)

    require_real_data()  # The Evaluate page shows real test images.
    evaluate = AppTest.from_file("../pages/evaluate.py", default_timeout=60).run()
    assert not evaluate.exception, evaluate.exception
    (accuracy,) = [metric for metric in evaluate.metric if metric.label == "Test accuracy"]
    single = mirrored_cache.record.single_view_accuracy
    assert f"from the picture alone it scores {single:.2%}." in accuracy.help


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
def test_the_report_says_so_and_gives_the_single_view_score(mirrored_cache):
    from fmnist_core.cli.train_command import command_line
    from fmnist_core.report.comparison import build_report, comparison_table

    markdown = build_report(
        {"model1": mirrored_cache, "model2": None, "model3": None},
        command_line,
        races=[],
        machine={"cpu_model": "test CPU"},
    ).markdown
    single = mirrored_cache.record.single_view_accuracy
    assert f"from the picture alone it scores {single:.2%}." in markdown
    row = comparison_table({"model1": mirrored_cache}).iloc[0]
    assert row["single_view_accuracy"] == single and row["test_accuracy"] == mirrored_cache.record.test_accuracy


# The views benchmark ----------------------------------------------------------------------------------------


def test_the_views_benchmark_shifts_and_mirrors_as_it_says():
    from benchmarks.mirror_views import shifted, views

    images = np.zeros((1, 28, 28), np.uint8)
    images[0, 5, 7] = 200
    assert shifted(images, 1, 0)[0, 6, 7] == 200 and shifted(images, 0, -1)[0, 5, 6] == 200
    assert shifted(images, 1, 0).sum() == images.sum()
    assert [len(views(images, count)) for count in (1, 2, 10)] == [1, 2, 10]
    mirrored = views(images, 2)[1]
    assert mirrored[0, 5, 20] == 200  # Column 7 of 28 mirrors to column 20.


def test_the_views_benchmark_says_what_to_train_when_no_full_model_is_cached(cache_dir, capsys):
    from benchmarks.mirror_views import main

    assert main([]) == 1
    assert "--preset full" in capsys.readouterr().err
