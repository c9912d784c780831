"""Pictures of what `fmnist_core.explain.inside` computes: filter grids, feature-map grids and saliency overlays.

Plain NumPy arrays out (uint8 RGB or grey), so the page shows them with `st.image` and the CLI writes them as
PNG with Pillow. Every pixel of the 28×28 world stays a sharp square (nearest-neighbour enlargement): smoothing
would hide how coarse the network's view really is.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fmnist_core.pixels import enlarge, to_unit_range

if TYPE_CHECKING:  # Only for the annotation: drawing needs no TensorFlow, so a page paints before importing it.
    from fmnist_core.explain.inside import LayerMaps

# Colour ramps (anchor colours, evenly spaced), so no plotting library is needed.
# Signed weights: blue negative, white zero, red positive (ColorBrewer RdBu).
DIVERGING = np.array([(33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)], np.float32)
# Evidence from some to most, laid over the picture: deep red, orange, yellow, pale yellow.
HEAT = np.array([(200, 0, 0), (255, 90, 0), (255, 200, 0), (255, 255, 170)], np.float32)
GAP = 2  # Pixels between the cells of a grid.
MAP_GAP_COLOUR = 255  # White gaps separate dark feature maps clearly.
FILTER_GAP_COLOUR = 40  # Dark gaps separate pale kernels clearly.
MAP_CLIP_QUANTILE = 0.995  # Feature maps: the brightest 0.5 % of a block's values show as white.
HEAT_CLIP_QUANTILE = 0.99  # Overlay: the strongest 1 % of evidence shows at full strength.
OVERLAY_SIZE = 280  # 28 × 10, the size of the pictures on the Predict page.


def colour(values: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to uint8 RGB along `ramp` (linear between its anchors)."""
    position = np.clip(np.asarray(values, np.float32), 0.0, 1.0) * (len(ramp) - 1)
    low = np.floor(position).astype(int).clip(0, len(ramp) - 2)
    share = (position - low)[..., None]
    return np.rint(ramp[low] * (1 - share) + ramp[low + 1] * share).astype(np.uint8)


def enlarge_colour(picture: np.ndarray, scale: int) -> np.ndarray:
    """`pixels.enlarge` for an RGB (H, W, 3) picture: its colour axis is last, not its width."""
    return np.moveaxis(enlarge(np.moveaxis(picture, -1, 0), scale), 0, -1)


def grid(cells: np.ndarray, columns: int, gap_colour: int = MAP_GAP_COLOUR) -> np.ndarray:
    """Tile (N, h, w[, 3]) cells into rows of `columns`, GAP pixels apart."""
    count, height, width = cells.shape[:3]
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    shape = (rows * (height + GAP) - GAP, columns * (width + GAP) - GAP, *cells.shape[3:])
    sheet = np.full(shape, gap_colour, np.uint8)
    for index, cell in enumerate(cells):
        top, left = (index // columns) * (height + GAP), (index % columns) * (width + GAP)
        sheet[top : top + height, left : left + width] = cell
    return sheet


def filter_grid(filters: np.ndarray, scale: int = 10, columns: int = 16) -> np.ndarray:
    """First-layer kernels (F, 3, 3) as a grid of RGB squares: red weights add brightness, blue subtract.

    Each kernel is scaled by its own largest weight: batch norm rescales every filter's output anyway, so only
    the pattern matters, not the size of the weights.
    """
    peaks = np.abs(filters).reshape(len(filters), -1).max(axis=1)[:, None, None]
    signed = np.divide(filters, peaks, out=np.zeros_like(filters), where=peaks > 0)
    cells = np.stack([enlarge_colour(colour((kernel + 1) / 2, DIVERGING), scale) for kernel in signed])
    return grid(cells, columns, FILTER_GAP_COLOUR)


def maps_grid(layer: LayerMaps, cell: int = 56, columns: int = 16) -> np.ndarray:
    """A block's maps (H, W, C) as a grey grid, one cell per filter, all on the block's own brightness scale.

    One scale for the whole block keeps weak and silent filters dark instead of blowing up their noise; it tops
    out at the block's 99.5th percentile so that a few very bright pixels do not leave every other map black.
    """
    maps = np.moveaxis(layer.maps, -1, 0)
    top = float(np.quantile(maps, MAP_CLIP_QUANTILE))
    top = top if top > 0 else float(maps.max())
    grey = np.zeros(maps.shape, np.uint8) if top <= 0 else np.rint(np.clip(maps / top, 0, 1) * 255).astype(np.uint8)
    scale = max(1, cell // maps.shape[1])
    return grid(enlarge(grey, scale), columns)


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, size: int = OVERLAY_SIZE) -> np.ndarray:
    """The 28×28 picture, dimmed, with the saliency on top in heat colours (RGB uint8, size × size).

    Integrated gradients put most of the evidence on a few pixels; stretched so that the strongest 1 % shows
    at full strength, the rest of the evidence stays visible. The heat covers the picture in proportion to its
    strength, so pixels without evidence still show the garment.
    """
    picture = to_unit_range(image)
    evidence = np.asarray(saliency, np.float32)
    positive = evidence[evidence > 0]
    top = float(np.quantile(positive, HEAT_CLIP_QUANTILE)) if len(positive) else 1.0
    strength = np.clip(evidence / max(top, 1e-12), 0.0, 1.0)
    grey = np.repeat(picture[..., None] * 170.0, 3, axis=-1)
    heat = colour(strength, HEAT).astype(np.float32)
    # Square root: weak evidence still tints its pixel, so the eye sees the whole area the network used.
    cover = np.sqrt(strength)[..., None]
    blended = np.rint(grey * (1 - cover) + heat * cover).astype(np.uint8)
    return enlarge_colour(blended, max(1, size // picture.shape[0]))


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write a uint8 grey or RGB array as a PNG file."""
    from PIL import Image

    Image.fromarray(array).save(path, format="PNG")
    return path
