"""How pictures are held: uint8 0–255 as Fashion-MNIST stores them, float32 in [0, 1] as the models read them,
and enlarged with square pixels when people look at them. A leaf module (NumPy only).
"""

from __future__ import annotations

import numpy as np


def to_unit_range(images) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 images are divided by 255, float images are taken as already scaled."""
    values = np.asarray(images)
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    return values.astype(np.float32, copy=False)


def to_uint8(images) -> np.ndarray:
    """uint8 pixels: float images in [0, 1] are scaled to 0–255, rounded and clipped; uint8 images pass as they are."""
    values = np.asarray(images)
    if values.dtype == np.uint8:
        return values
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def enlarge(images, scale: int) -> np.ndarray:
    """Each pixel becomes a `scale` × `scale` square (nearest neighbour, over the last two axes).

    No smoothing, on purpose: it would hide how coarse the 28 × 28 pictures a model sees really are.
    """
    return np.asarray(images).repeat(scale, axis=-2).repeat(scale, axis=-1)
