"""A corpus of bad or odd upload files, generated at test time so no binary blobs live in git.

Each case names the file a user might upload and what prepare_image must do with it: "ok" means it
returns a valid 28x28 array, any other value is a word the SketchError message must contain.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy
from PIL import Image, features


@dataclass(frozen=True)
class CorpusCase:
    """One generated upload: its case name, its file name in the corpus folder, and the expected outcome."""

    name: str
    filename: str
    expect: str


def garment(size: int = 28) -> numpy.ndarray:
    """Draw a textured T-shirt, light on black, filling a size x size frame the way Fashion-MNIST does."""
    # Sampling at pixel centres keeps the shape symmetric, so its bounding box is exactly centred.
    rows, columns = (numpy.mgrid[0:size, 0:size] + 0.5) / size
    sleeves = (rows < 0.4) & (numpy.abs(columns - 0.5) < 0.5 - 0.4 * rows)
    body = numpy.abs(columns - 0.5) < 0.3
    neck = (rows < 0.12) & (numpy.abs(columns - 0.5) < 0.12)
    # Stripes and shading give the round trip texture to preserve, not just a flat silhouette.
    texture = 150 + 60 * numpy.sin(rows * 25) + 40 * columns
    return numpy.where((sleeves | body) & ~neck, texture, 0).clip(0, 255).astype(numpy.uint8)


def dark_on_white(image: numpy.ndarray, scale: int = 12, offset: tuple[int, int] = (31, 77)) -> Image.Image:
    """Render a Fashion-MNIST-style image big, off-centre and dark on white, like a user's drawing."""
    big = Image.fromarray(255 - image).resize((image.shape[1] * scale, image.shape[0] * scale))
    canvas = Image.new("L", (big.width + 150, big.height + 120), 255)
    canvas.paste(big, offset)
    return canvas


def light_garment(size: int = 28) -> numpy.ndarray:
    """A garment whose product photo is light with mid-tone shading: dark-ish in Fashion-MNIST's negated terms."""
    shape = garment(size) > 0
    shaded = garment(size).astype(numpy.float32) * 0.5 - 35  # The 90..250 texture becomes 10..90.
    return numpy.where(shape, shaded.clip(10, 255), 0).astype(numpy.uint8)


def product_cutout(image: numpy.ndarray, tint=(1.0, 1.0, 1.0), scale: int = 12) -> Image.Image:
    """Render a Fashion-MNIST-style image as the product photo it was made from, cut out on transparency.

    Fashion-MNIST put each product on white and negated it, so the product's pixels are 255 - image; the
    background is fully transparent (stored as transparent black, as most editors export it) and the outline
    soft, as a cut-out tool leaves it. `tint` multiplies the colour channels, for a coloured product.
    """
    product = numpy.repeat((255 - image)[:, :, None].astype(numpy.float32), 3, axis=2) * numpy.asarray(tint)
    alpha = Image.fromarray(numpy.where(image > 0, 255, 0).astype(numpy.uint8))
    size = (image.shape[1] * scale, image.shape[0] * scale)
    colour = Image.fromarray(product.clip(0, 255).astype(numpy.uint8)).resize(size, Image.Resampling.NEAREST)
    picture = Image.merge("RGBA", [*colour.split(), alpha.resize(size, Image.Resampling.BILINEAR)])
    canvas = Image.new("RGBA", (size[0] + 150, size[1] + 120), (0, 0, 0, 0))
    canvas.paste(picture, (31, 77))
    return canvas


def white_ink_drawing() -> Image.Image:
    """Near-white strokes with soft edges on a transparent canvas, as a drawing app exports light ink."""
    strokes = Image.fromarray(garment(28)).resize((280, 280), Image.Resampling.BILINEAR)
    return Image.merge("RGBA", [Image.new("L", strokes.size, 250)] * 3 + [strokes])


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    """Encode a PIL image in memory and return the file's bytes."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """Build one PNG chunk with a correct CRC, so only the content we choose is wrong."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def handmade_png(width: int, height: int, pixel_data: bytes) -> bytes:
    """Write an 8-bit grayscale PNG by hand, which allows headers that Pillow itself would refuse to write."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(pixel_data, 9))
        + png_chunk(b"IEND", b"")
    )


def _garment_picture(mode: str = "L") -> Image.Image:
    """The standard dark-on-white garment picture, converted to the requested mode."""
    return dark_on_white(garment()).convert(mode)


def _truncated(image_format: str) -> bytes:
    """Cut an encoded garment picture after 60% of its bytes, as an interrupted upload would."""
    data = encode(_garment_picture("RGB"), image_format)
    return data[: len(data) * 6 // 10]


def _animated_gif() -> bytes:
    """Two frames: the garment first, then a blank frame that must be ignored."""
    first = _garment_picture()
    blank = Image.new("L", first.size, 255)
    return encode(first, "GIF", save_all=True, append_images=[blank], duration=200, loop=0)


def _sixteen_bit() -> bytes:
    """A 16-bit grayscale PNG, which Pillow opens in mode I;16."""
    values = numpy.asarray(_garment_picture(), dtype=numpy.uint16) * 257
    return encode(Image.fromarray(values), "PNG")


def _palette_with_transparency() -> bytes:
    """A palette PNG whose background colour index is declared transparent."""
    picture = _garment_picture().convert("P")
    return encode(picture, "PNG", transparency=picture.getpixel((0, 0)))


def _transparent_gif() -> bytes:
    """A GIF whose background palette index is transparent."""
    picture = _garment_picture().convert("P")
    return encode(picture, "GIF", transparency=picture.getpixel((0, 0)))


def _photo_like() -> bytes:
    """A 3000x2500 noisy photo of a dark garment on a light gradient, about 10 MB as JPEG quality 100."""
    generator = numpy.random.default_rng(7)
    garment_mask = numpy.asarray(Image.fromarray(garment()).resize((2200, 2200)), dtype=numpy.float32) > 0
    picture = numpy.linspace(200, 240, 3000, dtype=numpy.float32)[None, :].repeat(2500, axis=0)
    picture[150:2350, 400:2600][garment_mask] = 60
    picture = picture[:, :, None] + generator.normal(0, 20, (2500, 3000, 3)).astype(numpy.float32)
    return encode(Image.fromarray(picture.clip(0, 255).astype(numpy.uint8)), "JPEG", quality=100)


def _keras_zip() -> bytes:
    """A .keras model file is a zip archive; users pick one by mistake from the same folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential"}')
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(512))
    return buffer.getvalue()


SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">
<rect x="20" y="10" width="60" height="80"/></svg>
"""
PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""
HTML = b"<!DOCTYPE html>\n<html><head><title>Shirt</title></head><body><img src='shirt.jpg'></body></html>\n"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _corrupt_png() -> bytes:
    """A PNG whose compressed pixel data has been overwritten, as a bad disk or transfer would do."""
    data = bytearray(encode(_garment_picture(), "PNG"))
    start = data.find(b"IDAT") + 40
    data[start : start + 16] = bytes(16)
    return bytes(data)


def _plain(mode: str, size: tuple[int, int], colour, image_format: str = "PNG") -> Callable[[], bytes]:
    """Return a builder for a picture of one uniform colour."""
    return lambda: encode(Image.new(mode, size, colour), image_format)


def _constant(data: bytes) -> Callable[[], bytes]:
    """Return a builder for fixed bytes."""
    return lambda: data


BUILDERS: list[tuple[CorpusCase, Callable[[], bytes]]] = [
    (CorpusCase("empty file", "empty.png", "empty"), _constant(b"")),
    (
        CorpusCase("text renamed .png", "notes.png", "not an image"),
        _constant(b"Buy milk.\nCall Anna.\n" * 20),
    ),
    (CorpusCase("truncated PNG", "truncated.png", "truncated"), lambda: _truncated("PNG")),
    (CorpusCase("truncated JPEG", "truncated.jpg", "truncated"), lambda: _truncated("JPEG")),
    (CorpusCase("corrupt PNG data", "corrupt.png", "damaged"), _corrupt_png),
    (CorpusCase("bomb header", "bomb_header.png", "too large"), lambda: handmade_png(100_000, 100_000, b"")),
    # 7000x7000 is under Pillow's own limit but over ours, so only our header check can stop it.
    (
        CorpusCase("49 MP zeros", "bomb_49mp.png", "too large"),
        lambda: handmade_png(7000, 7000, bytes(7001 * 7000)),
    ),
    (CorpusCase("zero width", "zero_width.png", "damaged"), lambda: handmade_png(0, 10, b"")),
    (CorpusCase("animated GIF", "animated.gif", "ok"), _animated_gif),
    (CorpusCase("16-bit PNG", "sixteen_bit.png", "ok"), _sixteen_bit),
    (CorpusCase("CMYK JPEG", "cmyk.jpg", "ok"), lambda: encode(_garment_picture("CMYK"), "JPEG", quality=90)),
    (CorpusCase("palette transparency", "palette.png", "ok"), _palette_with_transparency),
    (CorpusCase("LA mode PNG", "gray_alpha.png", "ok"), lambda: encode(_garment_picture("LA"), "PNG")),
    (CorpusCase("GIF transparency", "transparent_index.gif", "ok"), _transparent_gif),
    (CorpusCase("BMP", "garment.bmp", "ok"), lambda: encode(_garment_picture("RGB"), "BMP")),
    # A light product cut out on transparency: its mid-tone shading must not be inverted (issue 16).
    (CorpusCase("light product cut-out", "cutout.png", "ok"), lambda: encode(product_cutout(light_garment()), "PNG")),
    (
        CorpusCase("beige product cut-out", "cutout_beige.png", "ok"),
        lambda: encode(product_cutout(light_garment(), tint=(1.0, 0.9, 0.75)), "PNG"),
    ),
    (CorpusCase("white ink on transparency", "white_ink.png", "ok"), lambda: encode(white_ink_drawing(), "PNG")),
    (CorpusCase("1x1 PNG", "dot.png", "too small"), _plain("L", (1, 1), 0)),
    (CorpusCase("5x5 PNG", "tiny.png", "too small"), _plain("L", (5, 5), 255)),
    (CorpusCase("all white", "white.png", "no object"), _plain("L", (300, 300), 255)),
    (CorpusCase("all black", "black.png", "no object"), _plain("L", (300, 300), 0)),
    (
        CorpusCase("uniform colour JPEG", "beige.jpg", "no object"),
        _plain("RGB", (300, 200), (222, 200, 170), "JPEG"),
    ),
    (
        CorpusCase("fully transparent", "transparent.png", "no object"),
        _plain("RGBA", (280, 280), (0, 0, 0, 0)),
    ),
    # A 10 MB photo is within both limits, so it must work; JPEG draft decoding keeps it fast.
    (CorpusCase("10 MB noisy photo", "photo.jpg", "ok"), _photo_like),
    (CorpusCase("over 20 MB", "huge.png", "too large"), lambda: PNG_SIGNATURE + bytes(21 * 2**20)),
    (CorpusCase("keras zip renamed", "model.png", "zip"), _keras_zip),
    (CorpusCase("SVG", "drawing.svg", "svg"), _constant(SVG)),
    (CorpusCase("PDF", "scan.pdf", "pdf"), _constant(PDF)),
    (CorpusCase("HTML renamed .jpg", "page.jpg", "html"), _constant(HTML)),
    (CorpusCase("TIFF renamed .png", "scan.png", "tiff"), lambda: encode(_garment_picture(), "TIFF")),
    (CorpusCase("HEIC photo", "IMG_0001.jpg", "heic"), _constant(HEIC)),
    (
        CorpusCase("random bytes", "random.png", "not an image"),
        lambda: numpy.random.default_rng(3).bytes(4096),
    ),
    (CorpusCase("PNG signature then junk", "junk.png", "damaged"), _constant(PNG_SIGNATURE + b"junk" * 100)),
    # 4000x2 is also under 8 pixels high, so the 4000x100 banner is what isolates the aspect-ratio rule.
    (CorpusCase("4000x2 strip", "strip.png", "too small"), _plain("L", (4000, 2), 255)),
    (CorpusCase("4000x100 banner", "banner.png", "aspect ratio"), _plain("L", (4000, 100), 0)),
]
if features.check("webp"):
    BUILDERS.append((CorpusCase("WebP", "garment.webp", "ok"), lambda: encode(_garment_picture("RGB"), "WEBP")))

CASE_NAMES = tuple(case.name for case, _ in BUILDERS)


def make_corpus(directory: Path) -> list[CorpusCase]:
    """Write every corpus file into directory and return the cases describing them."""
    directory.mkdir(parents=True, exist_ok=True)
    for case, build in BUILDERS:
        (directory / case.filename).write_bytes(build())
    return [case for case, _ in BUILDERS]
