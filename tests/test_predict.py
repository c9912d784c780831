"""The Predict page and its maths: top-k, agreement between models, and the page driven through AppTest."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw

from fmnist_core.config import PRESETS
from fmnist_core.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from fmnist_core.engine.remote import DaskTrainer
from fmnist_core.errors import BusyError
from fmnist_core.evaluate.evaluation import predict_one
from fmnist_core.evaluate.predict import (
    BOX_COLOUR,
    TOP_K,
    ModelPrediction,
    classify,
    find_consensus,
    outline_crop,
    pick_test_image,
    pixelated,
    top_k,
)
from fmnist_core.evaluate.sketch import MAX_UPLOAD_BYTES, prepare_sketch
from fmnist_core.jobs.classroom import is_visitor_id
from fmnist_core.store.cache import CacheEntry, best_entries
from tests.app_tabs import PREDICT_TABS, open_tab
from tests.conftest import require_real_data
from tests.records import make_entry, make_record

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "pages" / "predict.py"
PAGE_TIMEOUT = 60  # Seconds; the first run imports TensorFlow and loads the model.


def probabilities_favouring(*classes: int) -> np.ndarray:
    """A probability vector whose largest entries are `classes`, in that order."""
    values = np.full(NUM_CLASSES, 0.01)
    for rank, class_index in enumerate(classes):
        values[class_index] = 0.5 / (rank + 1)
    return values / values.sum()


def prediction(title: str, *classes: int, true_class: int | None = None) -> ModelPrediction:
    return ModelPrediction(title, top_k(probabilities_favouring(*classes)), 0.001, true_class)


def garment_png(size: tuple[int, int] = (200, 200), *, ink: str = "black", paper: str = "white") -> bytes:
    """A filled, trouser-like shape drawn dark on light, like a photo of a sketch on paper."""
    picture = Image.new("RGB", size, paper)
    ImageDraw.Draw(picture).polygon(
        [(70, 30), (130, 30), (150, 180), (110, 180), (100, 80), (90, 180), (50, 180)], fill=ink
    )
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


# Top-k and agreement -------------------------------------------------------------------------------------


def test_top_k_lists_the_most_probable_classes_first():
    rng = np.random.default_rng(0)
    for _ in range(20):
        probabilities = rng.dirichlet(np.ones(NUM_CLASSES))
        top = top_k(probabilities)
        assert [score.class_index for score in top] == list(np.argsort(-probabilities)[:3])
        assert [score.name for score in top] == [CLASS_NAMES[score.class_index] for score in top]
        assert all(first.probability >= second.probability for first, second in zip(top, top[1:], strict=False))
        # All ten scores are the whole distribution, so they still sum to one.
        assert sum(score.probability for score in top_k(probabilities, NUM_CLASSES)) == pytest.approx(1.0)


@given(arrays(np.float64, NUM_CLASSES, elements=st.floats(0.0, 1.0)), st.integers(1, NUM_CLASSES))
def test_top_k_never_leaves_out_a_more_probable_class(probabilities, k):
    top = top_k(probabilities, k)
    chosen = {score.class_index for score in top}
    assert len(top) == k == len(chosen)
    assert min(score.probability for score in top) >= max(
        (probabilities[index] for index in range(NUM_CLASSES) if index not in chosen), default=0.0
    )


def test_top_k_breaks_ties_in_class_order():
    assert [score.class_index for score in top_k(np.full(NUM_CLASSES, 0.1))] == [0, 1, 2]


@pytest.mark.parametrize(
    ("probabilities", "k"),
    [(np.ones(9) / 9, 3), (np.ones((1, 10)) / 10, 3), (np.ones(10) / 10, 0), (np.ones(10) / 10, 11)],
)
def test_top_k_rejects_bad_input(probabilities, k):
    with pytest.raises(ValueError):
        top_k(probabilities, k)


def test_consensus_groups_models_by_their_guess_and_flags_disagreement():
    shirt, tshirt = CLASS_NAMES.index("Shirt"), CLASS_NAMES.index("T-shirt/top")
    consensus = find_consensus(
        [prediction("Model 1", shirt, tshirt), prediction("Model 2", tshirt, shirt), prediction("Model 3", shirt)]
    )
    assert consensus.disagree and not consensus.unanimous
    assert consensus.groups == (("Shirt", ("Model 1", "Model 3")), ("T-shirt/top", ("Model 2",)))


def test_consensus_is_unanimous_when_every_model_picks_the_same_class():
    consensus = find_consensus([prediction("Model 1", 7, 5), prediction("Model 2", 7, 9)])
    assert consensus.unanimous and not consensus.disagree
    assert consensus.groups == (("Sneaker", ("Model 1", "Model 2")),)
    assert not find_consensus([]).unanimous and not find_consensus([]).disagree


def test_prediction_knows_whether_it_is_right_only_when_the_label_is_known():
    assert prediction("Model 1", 3, true_class=3).correct is True
    assert prediction("Model 1", 3, true_class=4).correct is False
    assert prediction("Model 1", 3).correct is None


class FixedModel:
    """Stands in for a Keras model: always returns the same probabilities and counts its calls."""

    def __init__(self, probabilities: np.ndarray):
        self.probabilities, self.calls = probabilities, 0

    def predict_on_batch(self, batch):
        assert batch.shape == (1, 28, 28, 1) and batch.dtype == np.float32 and 0 <= batch.min() <= batch.max() <= 1
        self.calls += 1
        return self.probabilities[None].astype(np.float32)


def test_classify_asks_every_model_once_warm_and_times_the_answer():
    models = {"Model 1": FixedModel(probabilities_favouring(6, 0)), "Model 3": FixedModel(probabilities_favouring(0))}
    result = classify(np.full((28, 28), 255, np.uint8), models, true_class=0)
    assert [p.title for p in result.predictions] == ["Model 1", "Model 3"]
    assert [p.guess.name for p in result.predictions] == ["Shirt", "T-shirt/top"]
    assert [p.correct for p in result.predictions] == [False, True]
    assert all(p.seconds >= 0 for p in result.predictions)
    assert all(model.calls == 2 for model in models.values())  # One warm-up call, then the timed one.
    assert result.consensus.disagree


def test_the_fast_single_image_path_matches_batch_evaluation(trained_cache, tiny_data):
    from fmnist_core.evaluate.evaluation import predict_probabilities
    from fmnist_core.store.cache import ModelCache

    cache = ModelCache()
    model = cache.load_model(cache.list()[0].entry_id)
    images = tiny_data[1][0][:3]
    expected = predict_probabilities(model, images)
    for image, probabilities in zip(images, expected, strict=True):
        assert np.allclose(predict_one(model, image)[0], probabilities, atol=1e-5)
        assert np.allclose(predict_one(model, image / 255.0)[0], probabilities, atol=1e-5)


# Choosing models and test images, display helpers --------------------------------------------------------


def cache_entry(name: str, accuracy: float, created: str, problem: str | None = None) -> CacheEntry:
    record = make_record(name, test_accuracy=accuracy, created=f"{created}T10:00:00")
    return make_entry(record, int(created[-2:]), problem)


def test_best_entries_keep_the_most_accurate_usable_entry_of_each_model_in_registry_order():
    entries = [
        cache_entry("model3", 0.70, "2026-01-05"),
        cache_entry("model1", 0.95, "2026-01-04", problem="model.keras does not match its checksum"),
        cache_entry("model1", 0.90, "2026-01-03"),
        cache_entry("model1", 0.80, "2026-01-02"),
        cache_entry("model2", 0.85, "2026-01-01"),
        cache_entry("model2", 0.85, "2026-01-06"),
    ]
    best = best_entries(entries)
    assert list(best) == ["model1", "model2", "model3"]
    assert [(name, entry.record.test_accuracy, entry.record.created[:10]) for name, entry in best.items()] == [
        ("model1", 0.90, "2026-01-03"),
        ("model2", 0.85, "2026-01-06"),
        ("model3", 0.70, "2026-01-05"),
    ]
    assert best_entries([]) == {"model1": None, "model2": None, "model3": None}


def test_pick_test_image_respects_the_chosen_class():
    labels = np.array([0, 7, 7, 3, 7, 1])
    rng = np.random.default_rng(0)
    assert {pick_test_image(labels, 7, rng) for _ in range(50)} == {1, 2, 4}
    assert {pick_test_image(labels, None, rng) for _ in range(200)} == set(range(6))
    with pytest.raises(ValueError):
        pick_test_image(labels, 9, rng)


def test_pixelated_turns_each_model_pixel_into_a_sharp_square():
    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    enlarged = pixelated(image)
    assert enlarged.shape == (280, 280) and enlarged.dtype == np.uint8
    expected = np.rint(image * 255).astype(np.uint8)
    assert np.array_equal(enlarged[::10, ::10], expected)
    assert np.array_equal(enlarged[9::10, 9::10], expected)


def test_outline_crop_draws_the_kept_box_without_touching_the_original():
    sketch = prepare_sketch(garment_png())
    outlined = np.asarray(outline_crop(sketch))
    left, top, right, bottom = sketch.bounding_box
    assert tuple(outlined[top, (left + right) // 2]) == BOX_COLOUR
    assert tuple(outlined[bottom - 1, left]) == BOX_COLOUR
    assert BOX_COLOUR not in {tuple(pixel) for pixel in np.asarray(sketch.original).reshape(-1, 3)}


# Settings ------------------------------------------------------------------------------------------------


def test_streamlit_config_uses_real_options_and_the_sketch_upload_limit():
    from streamlit import config

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    known = set(config.get_config_options())
    used = {f"{section}.{option}" for section, options in settings.items() for option in options}
    assert used <= known, f"unknown Streamlit options: {sorted(used - known)}"
    # Streamlit counts megabytes of 1024 * 1024 bytes, like MAX_UPLOAD_BYTES.
    assert settings["server"]["maxUploadSize"] * 1024 * 1024 == MAX_UPLOAD_BYTES
    assert settings["server"]["enableXsrfProtection"] is True


# The page, through AppTest -----------------------------------------------------------------------------


@pytest.fixture
def tiny_dataset(monkeypatch, tiny_data):
    """The test-image tab reads the tiny synthetic dataset instead of the real one."""
    import fmnist_app.common

    monkeypatch.setattr(fmnist_app.common, "dataset_or_stop", lambda: tiny_data)
    return tiny_data


def run_page():
    from streamlit.testing.v1 import AppTest

    page = AppTest.from_file(str(PAGE), default_timeout=PAGE_TIMEOUT).run()
    assert not page.exception, page.exception
    return page


def texts(node) -> list[str]:
    """Every text a person reads inside a block (markdown, captions, alerts), in page order."""
    found = []
    for child in getattr(node, "children", {}).values():
        value = getattr(child, "value", None)
        if child.type in ("markdown", "caption", "error", "warning", "success", "info") and isinstance(value, str):
            found.append(value)
        found.extend(texts(child))
    return found


def image_captions(node) -> list[str]:
    return [caption for image in node.image for caption in image.captions]


def guess_bars(node) -> list[str]:
    """The labels of the top-guess bars under `node`, in page order."""
    found = []
    for child in getattr(node, "children", {}).values():
        found += [child.proto.text] if child.type == "progress" else guess_bars(child)
    return found


def tab(page, label: str):
    return next(block for block in page.tabs if label in block.label)


def test_page_renders_and_answers_for_a_test_image(trained_cache, tiny_dataset):
    page = run_page()
    assert page.title[0].value.endswith("Predict a sketch")
    assert any("light on a black background" in text for text in texts(page.main))
    assert not image_captions(page.main) and not guess_bars(page.main), "the closed test-image tab is not drawn"
    open_tab(page, PREDICT_TABS, "test image")
    shown = texts(tab(page, "test image"))
    true_class = int(tiny_dataset[1][1][0])
    assert image_captions(tab(page, "test image")) == [f"Test image #0 · true label: {CLASS_NAMES[true_class]}"]
    assert any(text.startswith("**Model 1** says") and text.endswith(("✅", "❌")) for text in shown)
    assert any("Prediction time" in text and " ms" in text for text in shown)
    bars = guess_bars(tab(page, "test image"))
    assert len(bars) == TOP_K and bars[0].startswith("**") and " · " in bars[0], "the top guess in bold"
    assert not any("Train Model 1 now" in button.label for button in page.button)


def test_an_upload_is_prepared_shown_and_predicted(trained_cache, tiny_dataset):
    page = run_page()
    # A hostile-looking name is harmless: the page only ever reads the bytes.
    page.file_uploader[0].set_value(("../../etc/passwd.png", garment_png(), "image/png")).run()
    assert not page.exception, page.exception
    upload = tab(page, "Upload")
    shown = texts(upload)
    assert any(text.startswith("Preparation: inverted") for text in shown)
    assert any(text.startswith("**Model 1** says") and not text.endswith(("✅", "❌")) for text in shown)
    assert len(guess_bars(upload)) == TOP_K
    assert image_captions(upload) == ["As given", "What the models see (28 × 28, enlarged)"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,size\nshirt,M\n", "This file is not an image: it looks like a text file"),
        (garment_png(ink="white"), "No object found"),
    ],
)
def test_a_bad_upload_shows_the_reason_and_the_other_tabs_keep_working(trained_cache, tiny_dataset, content, message):
    page = run_page()
    page.file_uploader[0].set_value(("garment.png", content, "image/png")).run()
    assert not page.exception, page.exception
    assert [error.value for error in page.error if message in error.value]
    assert not guess_bars(tab(page, "Upload"))
    open_tab(page, PREDICT_TABS, "test image")
    assert len(guess_bars(tab(page, "test image"))) == TOP_K
    assert [error.value for error in page.error if message in error.value], "the upload and its message stay"


def canvas_state(picture: Image.Image | None) -> dict:
    """The state the drawable canvas sends back: its Fabric.js objects and, once drawn, a PNG data URL."""
    if picture is None:
        return {"drawing": {"raw": {"objects": [], "background": "#FFFFFF"}, "data": None}, "backgroundFit": None}
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {
        "drawing": {"raw": {"objects": [{"type": "path"}], "background": "#FFFFFF"}, "data": url},
        "backgroundFit": None,
    }


def test_a_drawing_is_predicted_and_an_empty_canvas_asks_for_one(trained_cache, tiny_dataset):
    # AppTest cannot draw, so the canvas's reply is set directly; a browser test draws for real.
    page = run_page()
    assert not texts(tab(page, "Draw")), "the closed Draw tab is not drawn"
    open_tab(page, PREDICT_TABS, "Draw")
    assert any("Draw something" in text for text in texts(tab(page, "Draw")))
    canvas = next(element for element in tab(page, "Draw").children.values() if element.type == "bidi_component")
    drawing = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(drawing).line((60, 40, 200, 240), fill="black", width=18)
    page.session_state[canvas.key] = canvas_state(drawing)
    page.run()
    assert not page.exception, page.exception
    shown = texts(tab(page, "Draw"))
    assert not any("Draw something" in text for text in shown)
    assert any(text.startswith("Preparation: inverted") for text in shown)
    assert any(text.startswith("**Model 1** says") for text in shown)

    # Away and back: the canvas is drawn anew, starting from the drawing, and the models answer it again.
    open_tab(page, PREDICT_TABS, "Upload")
    assert not texts(tab(page, "Draw"))
    open_tab(page, PREDICT_TABS, "Draw")
    untimed = [text for text in shown if not text.startswith("⏱️")]
    assert [text for text in texts(tab(page, "Draw")) if not text.startswith("⏱️")] == untimed
    canvas = next(element for element in tab(page, "Draw").children.values() if element.type == "bidi_component")
    arguments = json.loads(canvas.proto.json)
    assert arguments["initialDrawing"]["objects"] == [{"type": "path"}], "the canvas starts from the drawing"

    page.session_state[canvas.key] = canvas_state(None)  # The student clears the canvas.
    page.run()
    assert any("Draw something" in text for text in texts(tab(page, "Draw")))
    open_tab(page, PREDICT_TABS, "Upload")
    open_tab(page, PREDICT_TABS, "Draw")
    assert any("Draw something" in text for text in texts(tab(page, "Draw"))), "a cleared canvas stays cleared"


def test_choosing_a_class_shows_a_test_image_of_that_class(trained_cache, tiny_dataset):
    page = open_tab(run_page(), PREDICT_TABS, "test image")
    page.selectbox(key="test_class").set_value("Sneaker").run()
    assert not page.exception, page.exception
    index = page.number_input(key="test_index").value
    assert tiny_dataset[1][1][index] == CLASS_NAMES.index("Sneaker")
    assert image_captions(tab(page, "test image")) == [f"Test image #{index} · true label: Sneaker"]
    open_tab(page, PREDICT_TABS, "Draw")
    open_tab(page, PREDICT_TABS, "test image")
    assert page.number_input(key="test_index").value == index, "the choice is kept while the tab is closed"


def test_without_models_the_page_offers_quick_training_and_still_prepares_uploads(cache_dir, tiny_dataset):
    page = run_page()
    assert any("No trained model yet" in text for text in texts(page.main))
    assert [button for button in page.button if "Train Model 1 now" in button.label]
    page.file_uploader[0].set_value(("garment.png", garment_png(), "image/png")).run()
    assert not page.exception, page.exception
    upload = tab(page, "Upload")
    assert any(text.startswith("Preparation: inverted") for text in texts(upload))
    assert not guess_bars(upload)


@pytest.mark.parametrize("bfloat16_fast", [True, False])
def test_the_quick_training_button_asks_for_model_1_with_the_quick_preset(
    cache_dir, tiny_dataset, monkeypatch, bfloat16_fast
):
    monkeypatch.setattr("fmnist_core.machine.bfloat16_is_fast", lambda: bfloat16_fast)
    requests = []

    def ask(manager, name, config, cache=None, *, owner, retrain, runner):
        # By name: the page runs import the app's modules afresh, so the class object is not this test's.
        requests.append((name, config, is_visitor_id(owner), retrain, type(runner).__name__ == DaskTrainer.__name__))

    monkeypatch.setattr("fmnist_app.visitor.start_training_job", ask)
    page = run_page()
    next(button for button in page.button if "Train Model 1 now" in button.label).click().run()
    assert not page.exception, page.exception
    # In the precision this machine trains fast in (config.for_this_machine).
    quick = PRESETS["quick"] if bfloat16_fast else PRESETS["quick"].replace(precision="float32")
    # Queued for this visitor, nothing replaced, and trained on the Dask engine, not in the server.
    assert requests == [("model1", quick, True, False, True)]


def test_a_full_queue_is_explained_politely(cache_dir, tiny_dataset, monkeypatch):
    def full(*arguments, **keywords):
        raise BusyError("The queue is full: 30 requests are waiting, the most this server takes (30).")

    monkeypatch.setattr("fmnist_app.visitor.start_training_job", full)
    page = run_page()
    next(button for button in page.button if "Train Model 1 now" in button.label).click().run()
    assert not page.exception, page.exception
    assert [error.value for error in page.error if error.value.startswith("The queue is full")]


def test_a_running_training_shows_its_progress(cache_dir, tiny_dataset):
    from fmnist_app.common import job_manager

    release = threading.Event()
    status = job_manager().start("train", "Training Model 1 (quick)", lambda context: release.wait(30))
    try:
        page = run_page()
        assert [bar for bar in page.get("progress") if "Training Model 1 (quick)" in bar.proto.text]
        assert any("Elapsed" in caption for caption in page.caption.values)
    finally:
        release.set()
        job_manager().wait(status.job_id, timeout=30)


@pytest.mark.realdata
def test_the_test_image_tab_uses_the_real_test_set(trained_cache, monkeypatch):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(require_real_data()))
    page = open_tab(run_page(), PREDICT_TABS, "test image")
    page.selectbox(key="test_class").set_value("Bag").run()
    assert not page.exception, page.exception
    assert image_captions(tab(page, "test image"))[0].endswith("true label: Bag")
    assert any(text.startswith("**Model 1** says") for text in texts(tab(page, "test image")))


# The latency benchmark ----------------------------------------------------------------------------------


def test_latency_benchmark_explains_how_to_train_when_the_cache_is_empty(cache_dir, capsys):
    from benchmarks.predict_latency import main

    assert main([]) == 1
    assert "--model model1" in capsys.readouterr().err


def test_latency_benchmark_prints_a_row_per_cached_model(trained_cache, capsys):
    from benchmarks.predict_latency import main

    assert main(["--repeats", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("Warm single-image prediction, median of 3")
    assert table[2].startswith("Model 1") and "model1-" in table[2]


def test_latency_benchmark_times_one_drawing_update_of_every_model_together(trained_cache, capsys):
    from benchmarks.predict_latency import main

    assert main(["--repeats", "2", "--drawing"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(r"One Draw-tab update, Model 1 together: \d+\.\d ms \(median of 2\)", last), last
