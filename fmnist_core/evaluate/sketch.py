"""Turn an uploaded photo, drawing or canvas into a Fashion-MNIST-style 28x28 input.

Fashion-MNIST items are light garments on a black background, trimmed to the object, resized so
the long side fills 28 pixels and centred. A dark-on-white drawing resized straight to 28x28 looks
nothing like that, so this module reproduces the dataset's preparation step by step, and turns every
unusable upload into a SketchError whose message tells the user what was wrong and what to do.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy
from PIL import Image, ImageOps

from fmnist_core.errors import FmnistError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")

OUTPUT_SIZE = 28
MIN_IMAGE_SIDE = 8
MAX_ASPECT_RATIO = 20
WORKING_SIZE = 1024
MIN_CONTRAST = 16.0
WHITE_INK_CONTRAST = 2 * MIN_CONTRAST  # Strokes this close to white would all but vanish on a white backdrop.
OBJECT_THRESHOLD = 0.03
NOISE_FLOOR = 4.0
NOISE_SPREAD = 5.0
MIN_OBJECT_SIDE = 3
THIN_STROKE_PIXELS = 1.5
TARGET_STROKE_PIXELS = 2.0
LANCZOS_SUPPORT = 3

ACCEPTED = "Accepted formats are PNG, JPEG, WebP, BMP and GIF"
ALLOWED_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
NON_IMAGE_SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (a .keras model file is one, for example)"),
    (b"\x89HDF", "an HDF5 data file"),
)
OTHER_IMAGE_SIGNATURES = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "Photoshop"),
)


class SketchError(FmnistError, ValueError):
    """User-facing: message says what was wrong and what to do."""


@dataclass(frozen=True)
class PreparedSketch:
    """The 28x28 model input plus the facts the UI shows about how it was made.

    original is the upright, flattened RGB picture shrunk to at most 1024 pixels a side, and
    bounding_box is the object's (left, top, right, bottom) in its pixels, right and bottom exclusive.
    """

    image: numpy.ndarray
    original: Image.Image
    inverted: bool
    bounding_box: tuple[int, int, int, int]
    thickened: bool


def prepare_image(data, *, thicken: bool | None = None) -> numpy.ndarray:
    """Return the float32 (28, 28) light-on-dark image in [0, 1] that the models expect."""
    return prepare_sketch(data, thicken=thicken).image


def prepare_sketch(data, *, thicken: bool | None = None) -> PreparedSketch:
    """Prepare an upload like prepare_image and also report what was done to it."""
    image = _flatten(_to_pil_image(data))
    original = image.convert("RGB")
    # The models see one channel, so colour is reduced to luminance like the dataset's grayscale.
    gray = numpy.asarray(image.convert("L"), dtype=numpy.float32)
    # The border is almost always background, so its median says whether the background is light.
    border = numpy.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(numpy.median(border))
    inverted = background > 127.5
    if inverted:
        # Fashion-MNIST objects are light on black, so a light background means we must negate.
        gray, background = 255.0 - gray, 255.0 - background
    # Subtracting the background level makes it exactly black, as in the dataset.
    signal = numpy.clip(gray - background, 0.0, None)
    peak = float(signal.max())
    if peak < MIN_CONTRAST:
        raise _no_object_error()
    # Stretching contrast makes the brightest part of the object 1.0, like the dataset's 255.
    signal /= peak
    # Faint pixels are compression noise or paper texture, so they must not widen the box; the
    # border's median absolute deviation measures how noisy this particular background is.
    noise = max(NOISE_FLOOR, NOISE_SPREAD * float(numpy.median(numpy.abs(border - numpy.median(border)))))
    threshold = max(OBJECT_THRESHOLD, noise / peak)
    if threshold >= 1.0:
        raise _no_object_error()
    box = _bounding_box(signal >= threshold)
    left, top, right, bottom = box
    long_side = max(right - left, bottom - top)
    if long_side < MIN_OBJECT_SIDE:
        raise SketchError(
            f"The object is too small (only {long_side} pixels across). "
            "Please draw the garment larger or upload a closer picture."
        )
    stroke = _stroke_width(signal[top:bottom, left:right] >= threshold) * OUTPUT_SIZE / long_side
    # The stroke width in output pixels says whether lines would average away to faint grey at 28
    # pixels; unlike a raw ink fraction, it separates thin outlines from filled shapes at any scale.
    widen = stroke < THIN_STROKE_PIXELS if thicken is None else thicken
    added = max(TARGET_STROKE_PIXELS - stroke, 1.0) * long_side / OUTPUT_SIZE if widen else 0.0
    kernel = round(added) // 2 * 2 + 1
    # The margin leaves room for the dilation and for the resampling filter's support.
    margin = kernel + LANCZOS_SUPPORT * (long_side + kernel) // OUTPUT_SIZE + 2
    crop = _square_crop(signal, box, margin)
    if kernel > 1:
        # Dilating before the downscale widens thin strokes so that they survive it as solid lines.
        crop = _dilate(crop, kernel)
    result = _fit_to_frame(crop, _bounding_box(crop >= threshold))
    return PreparedSketch(result, original, inverted, box, bool(kernel > 1))


def _no_object_error() -> SketchError:
    """Build the message for pictures in which nothing stands out from the background."""
    return SketchError(
        "No object found: the image is blank (one uniform colour, or only noise, with no shape standing "
        "out from the background). Please draw or upload a garment."
    )


def _to_pil_image(data) -> Image.Image:
    """Accept bytes, a binary file object, a PIL image or a numpy array and return a loaded image."""
    if isinstance(data, numpy.ndarray):
        return _check_dimensions(_array_to_image(data))
    if isinstance(data, Image.Image):
        _check_dimensions(data)
        # Working on a copy leaves the caller's image, its frame and its EXIF rotation untouched.
        return _decode(data.copy)
    if hasattr(data, "read"):
        # Streamlit's UploadedFile is a file object; reading one byte too many detects oversize files.
        data = data.read(MAX_UPLOAD_BYTES + 1)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SketchError(
            f"Cannot read a {type(data).__name__} as an image. "
            "Please pass the uploaded file's bytes, a PIL image or a numpy array."
        )
    payload = bytes(data)
    if not payload:
        raise SketchError("The file is empty (0 bytes). Please choose the picture again or upload another.")
    check_file_size(len(payload))
    return _decode(lambda: Image.open(io.BytesIO(payload), formats=ALLOWED_FORMATS), payload)


def check_file_size(size: int) -> None:
    """SketchError when a picture file of `size` bytes is over the limit: callers holding a path ask before reading."""
    if size > MAX_UPLOAD_BYTES:
        raise SketchError(
            f"The file is too large ({size / 2**20:.1f} MB; the limit is "
            f"{MAX_UPLOAD_BYTES // 2**20} MB). Please upload a smaller picture, for example a screenshot."
        )


def _decode(opener, payload: bytes = b"") -> Image.Image:
    """Open, size-check and fully decode an image, translating every Pillow failure into a SketchError."""
    with warnings.catch_warnings():
        # Pillow only warns below twice its own limit; as an error the warning cannot slip through.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = opener()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels_error(str(error)) from error
        except Image.UnidentifiedImageError as error:
            raise SketchError(_describe_unreadable(payload)) from error
        except Exception as error:
            # Pillow's plugins raise many exception types on malformed headers, all meaning "damaged".
            raise _damaged_error(error) from error
        # The header gives the size before any pixel is decoded, so a bomb is stopped right here.
        _check_dimensions(image)
        try:
            # Animated GIF and WebP files are judged by their first frame, as a browser preview shows.
            if image.tell() != 0:
                image.seek(0)
            if image.format == "JPEG":
                # JPEG can decode at 1/2, 1/4 or 1/8 scale, which saves memory on big photos.
                image.draft(None, (WORKING_SIZE, WORKING_SIZE))
            image.load()
            # Phone photos store their rotation as an EXIF tag rather than rotating the pixels.
            ImageOps.exif_transpose(image, in_place=True)
            return image
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels_error(str(error)) from error
        except MemoryError as error:
            raise _too_many_pixels_error("not enough memory to decode it") from error
        except Exception as error:
            # Truncated or corrupt pixel data surfaces only now, as OSError, SyntaxError or ValueError.
            raise _damaged_error(error) from error


def _check_dimensions(image: Image.Image) -> Image.Image:
    """Reject sizes that are impossible to use before spending memory on decoding them."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels_error(f"{width} x {height} pixels")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise SketchError(
            f"The image is too small ({width} x {height} pixels); it needs at least {MIN_IMAGE_SIDE} "
            "pixels on each side. Please upload a larger picture or draw a bigger sketch."
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise SketchError(
            f"The image is {width} x {height} pixels, an aspect ratio above {MAX_ASPECT_RATIO}:1 that "
            "no garment picture has. Please crop it around the garment and upload it again."
        )
    return image


def _too_many_pixels_error(detail: str) -> SketchError:
    """Build the message for images whose pixel count is beyond what we are willing to decode."""
    return SketchError(
        f"The image is too large ({detail}); at most {MAX_PIXELS // 1_000_000} million pixels are "
        "accepted. Please resize it to a few thousand pixels per side and upload it again."
    )


def _damaged_error(error: Exception) -> SketchError:
    """Build the message for files that look like images but cannot be decoded."""
    return SketchError(
        f"The image file is damaged or truncated and could not be decoded ({type(error).__name__}: "
        f"{str(error)[:120]}). Please save the picture again, for example as PNG, and re-upload it."
    )


def _describe_unreadable(payload: bytes) -> str:
    """Say what an unreadable file most likely is, so the user knows which file they picked by mistake."""
    head = payload[:1024]
    for signature, name in OTHER_IMAGE_SIGNATURES:
        if head.startswith(signature):
            return f"This is a {name} image, a format this app cannot read. {ACCEPTED}; please convert it."
    if head[4:8] == b"ftyp":
        return (
            "This is a HEIC or AVIF photo (the iPhone default), a format this app cannot read. "
            f"{ACCEPTED}; please export the photo as JPEG."
        )
    # A BMP starts with "BM" and has four zero reserved bytes at offset 6, which text rarely does.
    looks_like_bitmap = head[:2] == b"BM" and head[6:10] == bytes(4)
    if looks_like_bitmap or any(head.startswith(signature) for signature in ALLOWED_SIGNATURES):
        return (
            "The image file is damaged: it starts like a PNG, JPEG, GIF or BMP image but its header cannot "
            "be read. Please save the picture again, for example as PNG, and re-upload it."
        )
    kind = next((name for signature, name in NON_IMAGE_SIGNATURES if head.startswith(signature)), None)
    lowered = head.lower()
    if kind is None and b"<svg" in lowered:
        kind = "an SVG vector drawing"
    elif kind is None and (b"<html" in lowered or b"<!doctype" in lowered):
        kind = "an HTML web page"
    elif kind is None and _looks_like_text(head):
        kind = "a text file"
    description = f": it looks like {kind}" if kind else " in a supported format"
    return f"This file is not an image{description}. {ACCEPTED}; please upload one of those."


def _looks_like_text(head: bytes) -> bool:
    """Guess whether the bytes are human-readable text rather than binary data."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(character.isprintable() or character.isspace() for character in text)


def _array_to_image(array: numpy.ndarray) -> Image.Image:
    """Validate a canvas-style array and wrap it as a PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise SketchError(
            f"The drawing has an unexpected shape {array.shape}; expected height x width for grayscale, "
            "or height x width x 3 (RGB) or x 4 (RGBA). Please send the canvas image data unchanged."
        )
    if array.dtype != numpy.uint8:
        raise SketchError(
            f"The drawing has pixel type {array.dtype}; expected 8-bit values (uint8, 0 to 255). "
            "Please send the canvas image data unchanged."
        )
    return Image.fromarray(numpy.ascontiguousarray(array))


def _flatten(image: Image.Image) -> Image.Image:
    """Return a working-size 8-bit 'L' or 'RGB' image: bit depth scaled, transparency composited."""
    try:
        if image.mode.startswith("I;16"):
            # Dropping the low byte maps 0..65535 onto 0..255 without a full-size floating-point copy.
            image = Image.fromarray((numpy.asarray(image) >> 8).astype(numpy.uint8))
        elif image.mode == "La":
            # Pillow converts premultiplied grey-with-alpha only to its plain form.
            image = image.convert("LA")
        elif "transparency" in image.info or image.mode in ("PA", "RGBa"):
            image = image.convert("RGBA")
        elif image.mode not in ("L", "RGB", "RGBA", "LA", "I", "F"):
            # CMYK, palette and other colour models convert through RGB, which Pillow supports for all.
            image = image.convert("L" if image.mode == "1" else "RGB")
        # Shrinking huge pictures early bounds memory and time; 28 output pixels never need more detail.
        image.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.LANCZOS)
    except (ValueError, OSError) as error:
        raise SketchError(
            f"The image uses the colour mode {image.mode}, which cannot be converted ({error}). "
            f"Please save it as an ordinary RGB PNG or JPEG. {ACCEPTED}."
        ) from error
    if image.mode in ("I", "F"):
        return Image.fromarray(_scale_to_eight_bits(numpy.asarray(image)))
    return _composite(image.convert("RGBA")) if image.mode in ("RGBA", "LA") else image


def _scale_to_eight_bits(values: numpy.ndarray) -> numpy.ndarray:
    """Map 32-bit integer or float grayscale values onto 0..255 without clipping away the picture."""
    values = numpy.nan_to_num(values.astype(numpy.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 255:
        scaled = values
    elif low >= 0 and high <= 65535:
        # Such images usually hold 16-bit samples, and 257 maps 65535 exactly onto 255.
        scaled = values / 257.0
    else:
        scaled = (values - low) * (255.0 / ((high - low) or 1.0))
    return numpy.clip(numpy.rint(scaled), 0, 255).astype(numpy.uint8)


def _composite(rgba: Image.Image) -> Image.Image:
    """Put a transparent picture on white, as Fashion-MNIST's products were, unless its strokes are white ink."""
    alpha = numpy.asarray(rgba.getchannel("A"), dtype=numpy.float32) / 255.0
    luminance = numpy.asarray(rgba.convert("L"), dtype=numpy.float32)
    # How much darker than white each pixel would make a white backdrop: all that can stand out there.
    on_white = (255.0 - luminance) * alpha
    visible = alpha >= 0.5
    # Judged on the visible pixels' 90th percentile, not their mean: a light garment with mid-tone shading
    # (mean above mid-grey) still shows on white, and only ink that is white nearly everywhere would vanish.
    white_ink = bool(visible.any()) and float(numpy.percentile(on_white[visible], 90)) < WHITE_INK_CONTRAST
    backdrop = Image.new("RGBA", rgba.size, (0, 0, 0, 255) if white_ink else (255, 255, 255, 255))
    return Image.alpha_composite(backdrop, rgba).convert("RGB")


def _bounding_box(mask: numpy.ndarray) -> tuple[int, int, int, int]:
    """Return (left, top, right, bottom) of the True pixels, right and bottom exclusive."""
    rows = numpy.flatnonzero(mask.any(axis=1))
    columns = numpy.flatnonzero(mask.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def _stroke_width(mask: numpy.ndarray) -> float:
    """Estimate stroke width as twice the ink area over its outline length, exact for long bands."""
    padded = numpy.pad(mask, 1)
    vertical_edges = numpy.count_nonzero(padded[1:] != padded[:-1])
    horizontal_edges = numpy.count_nonzero(padded[:, 1:] != padded[:, :-1])
    outline = vertical_edges + horizontal_edges
    return 2.0 * numpy.count_nonzero(mask) / max(outline, 1)


def _square_crop(signal: numpy.ndarray, box: tuple[int, int, int, int], margin: int) -> numpy.ndarray:
    """Cut a square around the box, padded with black where it extends past the picture."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top) + 2 * margin
    x0 = (left + right - side) // 2
    y0 = (top + bottom - side) // 2
    crop = numpy.zeros((side, side), dtype=numpy.float32)
    source = signal[max(y0, 0) : y0 + side, max(x0, 0) : x0 + side]
    crop[max(-y0, 0) : max(-y0, 0) + source.shape[0], max(-x0, 0) : max(-x0, 0) + source.shape[1]] = source
    return crop


def _dilate(values: numpy.ndarray, kernel: int) -> numpy.ndarray:
    """Grey-level dilation with a square kernel, done as two one-dimensional running maxima."""
    radius = kernel // 2
    for axis in (0, 1):
        padded = numpy.pad(values, [(radius, radius) if index == axis else (0, 0) for index in (0, 1)])
        length = values.shape[axis]
        result = padded.take(range(length), axis=axis)
        for shift in range(1, kernel):
            numpy.maximum(result, padded.take(range(shift, shift + length), axis=axis), out=result)
        values = result
    return values


def _fit_to_frame(crop: numpy.ndarray, box: tuple[int, int, int, int]) -> numpy.ndarray:
    """Resample the box so its long side spans 28 pixels and its centre lands on the frame's centre."""
    left, top, right, bottom = box
    half = max(right - left, bottom - top) / 2
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    source = (centre_x - half, centre_y - half, centre_x + half, centre_y + half)
    # LANCZOS averages many source pixels per output pixel, which avoids aliasing on large downscales.
    resized = Image.fromarray(crop).resize((OUTPUT_SIZE, OUTPUT_SIZE), Image.Resampling.LANCZOS, box=source)
    # LANCZOS rings slightly past the edges, so the result is clipped and re-stretched to a 1.0 peak.
    result = numpy.clip(numpy.asarray(resized, dtype=numpy.float32), 0.0, 1.0)
    return (result / max(float(result.max()), 1e-6)).astype(numpy.float32)
