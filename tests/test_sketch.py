"""Tests for fmnist_core.evaluate.sketch: user pictures become Fashion-MNIST-like 28x28 inputs, or a SketchError."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as numpy_strategies
from PIL import Image, ImageDraw

from devtools.bad_inputs import (
    CASE_NAMES,
    dark_on_white,
    encode,
    garment,
    light_garment,
    make_corpus,
    product_cutout,
    white_ink_drawing,
)
from fmnist_core.evaluate.sketch import MAX_UPLOAD_BYTES, SketchError, prepare_image, prepare_sketch

REAL_DATA = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
MAX_ERROR = 0.08
MIN_CORRELATION = 0.9


def similarity(result: numpy.ndarray, reference: numpy.ndarray) -> tuple[float, float]:
    """Return the mean absolute error and Pearson correlation between two [0, 1] images."""
    error = float(numpy.abs(result - reference).mean())
    correlation = float(numpy.corrcoef(result.ravel(), reference.ravel())[0, 1])
    return error, correlation


def assert_output_contract(image: numpy.ndarray) -> None:
    """Check the model-input contract: 28x28 float32 in [0, 1], peak 1, long side filling, centred."""
    assert image.dtype == numpy.float32
    assert image.shape == (28, 28)
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() > 0.99
    rows = numpy.flatnonzero((image > 0.05).any(axis=1))
    columns = numpy.flatnonzero((image > 0.05).any(axis=0))
    height, width = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
    assert 26 <= max(height, width) <= 28
    assert abs((rows[0] + rows[-1] + 1) / 2 - 14) <= 1.5
    assert abs((columns[0] + columns[-1] + 1) / 2 - 14) <= 1.5


def naive_resize(data: bytes) -> numpy.ndarray:
    """What most demo apps do: grayscale, squash straight to 28x28, divide by 255."""
    return numpy.asarray(Image.open(io.BytesIO(data)).convert("L").resize((28, 28)), dtype=numpy.float32) / 255


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_round_trip_of_dark_on_white_off_centre_picture(image_format):
    """A 28x28 garment drawn big, dark on white and off-centre comes back close to the original.

    Measure: mean absolute error below 0.08 and Pearson correlation above 0.9 against the original
    scaled to [0, 1]. Measured: PNG error 0.018, correlation 0.996; JPEG 90 error 0.041, correlation
    0.974. The naive approach scores error 0.55, correlation -0.41.
    """
    original = garment()
    data = encode(dark_on_white(original), image_format, quality=90)
    result = prepare_image(data)
    assert_output_contract(result)
    error, correlation = similarity(result, original / 255)
    assert error < MAX_ERROR and correlation > MIN_CORRELATION, (error, correlation)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_naive_resize_fails_the_round_trip_measure(image_format):
    """The naive squash-to-28x28 approach fails the same measure, so the measure is meaningful."""
    original = garment()
    data = encode(dark_on_white(original), image_format, quality=90)
    error, correlation = similarity(naive_resize(data), original / 255)
    assert error > MAX_ERROR and correlation < MIN_CORRELATION, (error, correlation)


def centred_real_images(count: int) -> numpy.ndarray:
    """Read the first test images whose visible bounding box is 28 pixels long and exactly centred."""
    if not REAL_DATA.exists():
        pytest.fail(f"{REAL_DATA} is missing: run `apt-get install dataset-fashion-mnist` to install it.")
    with gzip.open(REAL_DATA) as stream:
        images = numpy.frombuffer(stream.read(), dtype=numpy.uint8, offset=16).reshape(-1, 28, 28)
    chosen = []
    for image in images:
        # Pixels of value 1 or 2 are invisible noise in the dataset that no upload could reproduce.
        rows = numpy.flatnonzero((image > 8).any(axis=1))
        columns = numpy.flatnonzero((image > 8).any(axis=0))
        long_side = max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1
        if long_side == 28 and rows[0] + rows[-1] == 27 and columns[0] + columns[-1] == 27:
            chosen.append(image)
        if len(chosen) == count:
            return numpy.stack(chosen)
    pytest.fail("Too few centred images in the Fashion-MNIST test set; is the file the official one?")


@pytest.mark.realdata
@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_round_trip_of_real_fashion_mnist_images(image_format):
    """Real test images, rendered 12x larger, dark on white and off-centre, come back close.

    Same measure as the synthetic round trip: error below 0.08 and correlation above 0.9 for each of 20
    images. Measured worst: error 0.065, correlation 0.974 (PNG and JPEG 90); the naive approach's best is
    error 0.45, correlation -0.20.
    """
    for original in centred_real_images(20):
        data = encode(dark_on_white(original), image_format, quality=90)
        result = prepare_image(data)
        assert_output_contract(result)
        error, correlation = similarity(result, original / 255)
        assert error < MAX_ERROR and correlation > MIN_CORRELATION, (error, correlation)
        naive_error, naive_correlation = similarity(naive_resize(data), original / 255)
        assert naive_error > MAX_ERROR and naive_correlation < MIN_CORRELATION


def shirt(stroke: int | None = None, ink=0, paper=255, mode: str = "L", size: int = 300) -> Image.Image:
    """Draw a T-shirt off-centre on a larger canvas, filled or as an outline of the given stroke width."""
    corners = [(0.3, 0), (0.7, 0), (1, 0.25), (0.85, 0.4), (0.78, 0.33), (0.78, 1), (0.22, 1), (0.22, 0.33)]
    corners += [(0.15, 0.4), (0, 0.25)]
    points = [(40 + x * size, 30 + y * size) for x, y in corners]
    canvas = Image.new(mode, (size + 100, size + 60), paper)
    if stroke is None:
        ImageDraw.Draw(canvas).polygon(points, fill=ink)
    else:
        ImageDraw.Draw(canvas).polygon(points, outline=ink, width=stroke)
    return canvas


def assert_similar(result: numpy.ndarray, expected: numpy.ndarray, min_correlation: float = 0.98) -> None:
    """Two preparations of the same drawing must agree closely."""
    error, correlation = similarity(result, expected)
    assert error < 0.05 and correlation > min_correlation, (error, correlation)


def test_prepare_image_is_the_image_of_prepare_sketch():
    """The two entry points run the same pipeline; the sketch also reports what it did."""
    data = encode(shirt(), "PNG")
    sketch = prepare_sketch(data)
    numpy.testing.assert_array_equal(prepare_image(data), sketch.image)
    assert sketch.inverted and not sketch.thickened
    assert sketch.original.mode == "RGB" and sketch.original.size == (400, 360)
    assert sketch.bounding_box == (40, 30, 341, 331)


def test_bytes_file_objects_and_pil_images_give_the_same_result():
    """Raw bytes, a file object like Streamlit's UploadedFile and a PIL image are all accepted."""
    picture = shirt()
    expected = prepare_image(encode(picture, "PNG"))
    numpy.testing.assert_allclose(prepare_image(io.BytesIO(encode(picture, "PNG"))), expected)
    numpy.testing.assert_allclose(prepare_image(bytearray(encode(picture, "PNG"))), expected)
    numpy.testing.assert_allclose(prepare_image(picture), expected)


def test_transparent_canvas_with_coloured_strokes_matches_black_on_white():
    """A canvas export is transparent with coloured strokes; it is composited, not read as black."""
    canvas = numpy.zeros((280, 280, 4), dtype=numpy.uint8)
    strokes = numpy.asarray(shirt(size=200).crop((0, 0, 280, 280))) == 0
    canvas[strokes] = (200, 30, 30, 255)
    sketch = prepare_sketch(canvas)
    assert_output_contract(sketch.image)
    assert sketch.inverted
    assert_similar(sketch.image, prepare_image(shirt(size=200).crop((0, 0, 280, 280))))


def test_light_strokes_on_transparent_canvas_are_put_on_black():
    """White strokes on a transparent canvas would vanish on white, so they go on a black backdrop."""
    canvas = numpy.zeros((280, 280, 4), dtype=numpy.uint8)
    strokes = numpy.asarray(shirt(size=200).crop((0, 0, 280, 280))) == 0
    canvas[strokes] = (255, 255, 200, 255)
    sketch = prepare_sketch(canvas)
    assert not sketch.inverted
    assert_similar(sketch.image, prepare_image(shirt(size=200).crop((0, 0, 280, 280))))


def shading_correlation(result: numpy.ndarray, original: numpy.ndarray) -> float:
    """Pearson correlation over the garment's own pixels only: whether its shading runs the right way."""
    inside = original > 0
    return float(numpy.corrcoef(result[inside], original[inside])[0, 1])


@pytest.mark.parametrize("tint", [(1.0, 1.0, 1.0), (1.0, 0.9, 0.75)], ids=["grey", "beige"])
def test_a_light_product_cut_out_on_transparency_is_put_on_white_then_negated(tint):
    """A product photo cut out on transparency, light with mid-tone shading (its visible pixels average above
    mid-grey), comes back as the Fashion-MNIST image it was made from: on white, then negated.

    Measured: error 0.017 / 0.064 (grey / beige), shading correlation 0.98 / 0.97. The old rule (a black
    backdrop for light pictures) inverted the shading: error 0.24, shading correlation -0.91.
    """
    original = light_garment()
    cutout = product_cutout(original, tint)
    assert numpy.asarray(cutout.convert("L"))[numpy.asarray(cutout.getchannel("A")) == 255].mean() > 127.5
    sketch = prepare_sketch(encode(cutout, "PNG"))
    assert_output_contract(sketch.image)
    assert sketch.inverted, "composited on white, so negated like the dataset"
    error, correlation = similarity(sketch.image, original / original.max())
    assert error < MAX_ERROR and correlation > MIN_CORRELATION, (error, correlation)
    assert shading_correlation(sketch.image, original) > MIN_CORRELATION
    # The measure can tell: the same cut-out on black has its shading the wrong way round.
    on_black = prepare_image(Image.alpha_composite(Image.new("RGBA", cutout.size, (0, 0, 0, 255)), cutout))
    assert similarity(on_black, original / original.max())[0] > MAX_ERROR
    assert shading_correlation(on_black, original) < 0


def test_near_white_ink_with_soft_edges_goes_on_black():
    """Near-white strokes (250) on transparency would vanish on white: they get the black backdrop."""
    sketch = prepare_sketch(encode(white_ink_drawing(), "PNG"))
    assert_output_contract(sketch.image)
    assert not sketch.inverted
    error, correlation = similarity(sketch.image, garment() / garment().max())
    assert error < MAX_ERROR and correlation > MIN_CORRELATION, (error, correlation)


def test_opaque_canvas_array_with_black_strokes():
    """A (280, 280, 4) canvas painted white with thick black strokes is a valid drawing."""
    canvas = numpy.asarray(shirt(stroke=20, size=200, mode="RGBA", ink=(0, 0, 0, 255), paper=(255,) * 4))
    canvas = numpy.ascontiguousarray(canvas[:280, :280])
    sketch = prepare_sketch(canvas)
    assert_output_contract(sketch.image)
    assert sketch.inverted and not sketch.thickened


@pytest.mark.parametrize(
    ("orientation", "stored_rotation"), [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)]
)
def test_exif_orientation_is_applied(orientation, stored_rotation):
    """A phone JPEG stores sideways pixels plus an EXIF Orientation tag; the result must be upright."""
    upright = shirt()
    exif = Image.Exif()
    exif[0x0112] = orientation
    sideways = upright.transpose(stored_rotation)
    expected = prepare_image(encode(upright, "JPEG", quality=90))
    assert_similar(prepare_image(encode(sideways, "JPEG", quality=90, exif=exif)), expected)
    # Without the tag the same pixels give a clearly different result, so the test can tell.
    assert similarity(prepare_image(encode(sideways, "JPEG", quality=90)), expected)[1] < 0.8


def test_palette_image_with_transparent_black_background():
    """A palette PNG whose transparent background index is black must be composited, not read as black."""
    picture = numpy.asarray(shirt(ink=60))
    indices = numpy.where(picture == 255, 0, 1).astype(numpy.uint8)
    palette_image = Image.fromarray(indices, "P")
    palette_image.putpalette([0, 0, 0, 60, 60, 60] + [0] * 762)
    data = encode(palette_image, "PNG", transparency=0)
    assert_similar(prepare_image(data), prepare_image(encode(shirt(ink=60), "PNG")))


def test_la_image_with_transparent_black_background():
    """A grey-plus-alpha PNG with black transparent background is composited like RGBA."""
    picture = numpy.asarray(shirt())
    alpha = numpy.where(picture == 255, 0, 255).astype(numpy.uint8)
    grey_alpha = Image.merge("LA", [Image.fromarray(numpy.zeros_like(picture)), Image.fromarray(alpha)])
    assert_similar(prepare_image(encode(grey_alpha, "PNG")), prepare_image(encode(shirt(), "PNG")))


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    """A 16-bit grayscale PNG (mode I;16) gives the same result as its 8-bit version."""
    picture = dark_on_white(garment())
    data = encode(Image.fromarray(numpy.asarray(picture, dtype=numpy.uint16) * 257), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert_similar(prepare_image(data), prepare_image(encode(picture, "PNG")), min_correlation=0.999)


def test_cmyk_jpeg_matches_rgb_jpeg():
    """A print-workflow CMYK JPEG is converted to RGB properly, not read channel by channel."""
    picture = dark_on_white(garment()).convert("RGB")
    data = encode(picture.convert("CMYK"), "JPEG", quality=90)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert_similar(prepare_image(data), prepare_image(encode(picture, "JPEG", quality=90)))


def test_animated_gif_uses_its_first_frame():
    """Only the first frame of an animation counts, which is what a browser preview shows first."""
    first, second = shirt(), shirt().transpose(Image.Transpose.ROTATE_90).resize(shirt().size)
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    result = prepare_image(data)
    assert_similar(result, prepare_image(encode(first, "PNG")))
    assert similarity(result, prepare_image(encode(second, "PNG")))[1] < 0.8


def test_light_on_dark_picture_is_not_inverted():
    """A picture that already looks like Fashion-MNIST (light on black) is kept as it is."""
    original = garment()
    light_on_dark = Image.fromarray(255 - numpy.asarray(dark_on_white(original)))
    sketch = prepare_sketch(encode(light_on_dark, "PNG"))
    assert not sketch.inverted
    assert_output_contract(sketch.image)
    assert_similar(sketch.image, original / 255)
    assert prepare_sketch(encode(dark_on_white(original), "PNG")).inverted


def test_thin_line_drawing_is_thickened_automatically():
    """Two-pixel outlines on a 400-pixel picture would fade to grey at 28 pixels, so they are widened."""
    data = encode(shirt(stroke=2), "PNG")
    sketch = prepare_sketch(data)
    assert sketch.thickened
    assert_output_contract(sketch.image)
    unthickened = prepare_image(data, thicken=False)
    assert numpy.count_nonzero(sketch.image > 0.5) > 1.5 * numpy.count_nonzero(unthickened > 0.5)


@pytest.mark.parametrize("stroke", [None, 30])
def test_filled_or_thick_drawing_is_not_thickened(stroke):
    """A filled silhouette or a bold outline already survives the downscale and is left alone."""
    sketch = prepare_sketch(encode(shirt(stroke=stroke), "PNG"))
    assert not sketch.thickened
    assert_output_contract(sketch.image)


def test_thickening_can_be_forced_either_way():
    """The UI can override the automatic decision."""
    assert prepare_sketch(encode(shirt(), "PNG"), thicken=True).thickened
    assert not prepare_sketch(encode(shirt(stroke=2), "PNG"), thicken=False).thickened


def dot_picture() -> numpy.ndarray:
    """A blank 100x100 canvas with a single dark pixel, too small an object to scale up to 28 pixels."""
    picture = numpy.full((100, 100), 255, dtype=numpy.uint8)
    picture[40, 60] = 0
    return picture


@pytest.mark.parametrize(
    ("data", "keywords"),
    [
        pytest.param(numpy.zeros((280, 280, 2), dtype=numpy.uint8), ["shape", "rgba"], id="two channels"),
        pytest.param(numpy.zeros(784, dtype=numpy.uint8), ["shape"], id="flat array"),
        pytest.param(numpy.zeros((280, 280), dtype=numpy.float64), ["uint8"], id="float array"),
        pytest.param(numpy.zeros((280, 280, 4), dtype=numpy.uint8), ["no object", "draw or upload"], id="empty canvas"),
        pytest.param(numpy.full((280, 280, 3), 255, dtype=numpy.uint8), ["no object", "blank"], id="white array"),
        pytest.param(numpy.zeros((4, 4), dtype=numpy.uint8), ["too small"], id="4x4 array"),
        pytest.param(dot_picture(), ["object is too small", "larger"], id="single dot"),
        pytest.param(Image.new("RGB", (6, 40)), ["too small", "8 pixels"], id="narrow PIL image"),
        pytest.param("shirt.png", ["cannot read a str", "bytes"], id="file name"),
        pytest.param(None, ["cannot read a nonetype"], id="None"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES), ["too large", "20 mb"], id="over 20 MB"),
        pytest.param(memoryview(b""), ["empty"], id="empty memoryview"),
    ],
)
def test_unusable_inputs_raise_helpful_sketch_errors(data, keywords):
    """Each unusable input raises SketchError saying what was wrong and what to do."""
    with pytest.raises(SketchError) as raised:
        prepare_image(data)
    message = str(raised.value).lower()
    assert all(keyword in message for keyword in keywords), message
    assert "please" in message


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Write the bad-input corpus once per module and index its cases by name."""
    directory = tmp_path_factory.mktemp("corpus")
    return {case.name: (case, directory / case.filename) for case in make_corpus(directory)}


def test_corpus_is_large_enough(corpus):
    """The issue asks for at least 20 bad or odd upload files."""
    assert len(corpus) >= 20
    assert sorted(corpus) == sorted(CASE_NAMES)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_corpus_case(corpus, name):
    """Every corpus file either gives a valid array or a SketchError containing the expected word."""
    case, path = corpus[name]
    data = path.read_bytes()
    if case.expect == "ok":
        assert_output_contract(prepare_image(data))
        return
    with pytest.raises(SketchError) as raised:
        prepare_image(data)
    assert case.expect in str(raised.value).lower(), str(raised.value)


def assert_valid_or_sketch_error(data) -> None:
    """The property: a valid 28x28 float32 array in [0, 1], or a SketchError, and nothing else."""
    try:
        result = prepare_image(data)
    except SketchError as error:
        assert str(error)
        return
    assert result.dtype == numpy.float32 and result.shape == (28, 28)
    assert numpy.isfinite(result).all() and result.min() >= 0.0 and result.max() <= 1.0


FUZZ_SETTINGS = settings(deadline=None, max_examples=200, database=None, suppress_health_check=[HealthCheck.too_slow])
SMALL_ARRAYS = numpy_strategies.arrays(
    dtype=numpy.uint8,
    shape=st.tuples(st.integers(1, 48), st.integers(1, 48), st.sampled_from([1, 3, 4])),
)
SEEDS = {
    image_format: encode(shirt(stroke=6, size=60).convert("RGB"), image_format)
    for image_format in ("PNG", "JPEG", "GIF", "BMP", "WEBP")
}


@FUZZ_SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_give_an_array_or_a_sketch_error(data):
    """Random bytes never crash with anything other than SketchError."""
    assert_valid_or_sketch_error(data)


@FUZZ_SETTINGS
@given(SMALL_ARRAYS)
def test_small_png_images_give_an_array_or_a_sketch_error(array):
    """Any small grayscale, RGB or RGBA PNG either works or is rejected with a SketchError."""
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    assert_valid_or_sketch_error(encode(image, "PNG"))
    assert_valid_or_sketch_error(array)


@FUZZ_SETTINGS
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    st.integers(8, 10**6),
)
def test_damaged_image_files_give_an_array_or_a_sketch_error(image_format, changes, length):
    """Valid files with overwritten bytes or cut short exercise the decoders' error paths."""
    data = bytearray(SEEDS[image_format])
    for position, value in changes:
        data[position % len(data)] = value
    assert_valid_or_sketch_error(bytes(data[:length]))
