"""`python -m fmnist_core explain`: the PNG pictures and JSON figures it writes, and its exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fmnist_core.cli import main
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from tests.conftest import require_real_data
from tests.test_predict import garment_png


@pytest.fixture
def garment_file(tmp_path):
    path = tmp_path / "trousers.png"
    path.write_bytes(garment_png())
    return path


@pytest.mark.realdata
def test_explain_writes_the_pictures_and_the_figures(trained_cache, tmp_path, capsys):
    require_real_data()
    out = tmp_path / "slides"
    assert (
        main(["explain", "--model", "model1", "--image", "test:7", "--class", "Shirt", "--out", str(out), "--json"])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "explanation.json").read_text(encoding="utf-8"))
    predicted = CLASS_NAMES.index(printed["predicted_class"])
    expected = {"input.png", "filters.png", "explanation.json", f"saliency-{predicted}.png", "saliency-6.png"}
    expected |= {f"maps-{block}.png" for block in ("block1", "block2a", "block2b", "block3")}
    assert set(printed["files"]) == expected == {path.name for path in out.iterdir()}
    assert printed["image"] == "test image #7" and printed["true_class"] in CLASS_NAMES
    assert sum(printed["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert [block["shape"] for block in printed["blocks"]] == [[14, 14, 8], [14, 14, 8], [14, 14, 8], [7, 7, 8]]
    redundancy = printed["filter_redundancy"]
    assert redundancy["filters"] == 8 and redundancy["probe_images"] == 500
    assert redundancy["distinct_groups"] + redundancy["dead"] <= 8
    with Image.open(out / "saliency-6.png") as overlay:
        assert overlay.size == (280, 280) and overlay.mode == "RGB"
    with Image.open(out / "filters.png") as filters:
        # Eight 30-pixel kernels in one row, 2-pixel gaps.
        assert filters.size == (8 * 30 + 7 * 2, 30)


@pytest.mark.realdata
def test_explain_prints_a_summary_and_explains_a_picture_file(trained_cache, tmp_path, garment_file, capsys):
    require_real_data()
    assert main(["explain", "--model", "model1", "--image", str(garment_file), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "picture trousers.png →" in out and "First layer: 8 filters" in out and "Wrote 8 files" in out
    with Image.open(tmp_path / "o" / "input.png") as seen:
        assert np.asarray(seen).shape == (280, 280)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "image, words", [("test:10000", "There is no test image 10000"), ("train:60000", "the train set has 60,000")]
)
def test_explain_refuses_an_image_number_past_the_end(trained_cache, tmp_path, image, words, capsys):
    require_real_data()
    assert main(["explain", "--model", "model1", "--image", image, "--out", str(tmp_path)]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.realdata
def test_explain_says_when_it_cannot_write(trained_cache, tmp_path, garment_file, capsys):
    require_real_data()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["explain", "--model", "model1", "--image", str(garment_file), "--out", str(blocker)]) == 2
    said = capsys.readouterr().err
    assert "Cannot write the pictures to --out" in said and "is a file, not a folder" in said


def test_explain_without_a_cached_model_says_how_to_train_one(cache_dir, tmp_path, garment_file, capsys):
    assert main(["explain", "--model", "model2", "--image", str(garment_file), "--out", str(tmp_path)]) == 4
    assert (
        "Model 2 is not cached. Train it first: python -m fmnist_core train --model model2" in capsys.readouterr().err
    )
    assert main(["explain", "--model", "model1", "--preset", "full", "--image", "x", "--out", str(tmp_path)]) == 4
    assert "full preset is not cached" in capsys.readouterr().err


def test_explain_reports_a_damaged_model_as_damaged(trained_cache, tmp_path, garment_file, capsys):
    entry = next(path for path in trained_cache.iterdir() if path.name.startswith("model1-"))
    (entry / "model.keras").write_bytes(b"not a model")
    assert main(["explain", "--model", "model1", "--image", str(garment_file), "--out", str(tmp_path / "o")]) == 4
    message = capsys.readouterr().err
    assert f"Cached model {entry.name} is damaged" in message and "cache delete --damaged" in message
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "arguments, code, words",
    [
        (["--model", "model1", "--class", "Jumper"], 2, "--class 'Jumper' is not a class. The classes are: 0 T-shirt"),
        (["--model", "model1", "--class", "10"], 2, "is not a class"),
        (["--model", "model1", "--image", "test:-1"], 2, "neither test:N / train:N nor a picture file"),
        (["--model", "model1", "--image", "{notes}"], 2, "Cannot use"),
        (["--entry", "../../etc"], 4, "not a cache entry id"),
        (["--model", "model9"], 2, "invalid choice: 'model9'"),
    ],
)
def test_explain_bad_arguments_exit_with_clear_messages(trained_cache, tmp_path, arguments, code, words, capsys):
    notes = tmp_path / "notes.png"
    notes.write_text("Buy milk.\n")
    defaults = {"--image": "test:1", "--out": str(tmp_path / "out")}
    given = [argument.format(notes=notes) for argument in arguments]
    for flag, value in defaults.items():
        if flag not in given:
            given += [flag, value]
    try:
        returned = main(["explain", *given])
    except SystemExit as exit_:  # argparse's own usage errors.
        returned = exit_.code
    assert returned == code
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing is written when the request is refused"
