"""What augmentation does: training pictures as a preset's augmentation presents them to the network, drawn by the
training code itself (fmnist_core.training.loop.augment_batch, the function the tf.data pipeline maps over every
batch), with one line per lever of what it is for. The Dataset page shows it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmnist_core.config import get_preset
from fmnist_core.data.fashion_mnist import IMAGE_SIZE
from fmnist_core.errors import ConfigError
from fmnist_core.training.loop import Augmentation, augment_batch, scale_images


@dataclass(frozen=True)
class AugmentationPreview:
    """The same training pictures in several batches (steps) of one preset's training."""

    preset: str
    originals: np.ndarray  # (N, 28, 28) float32 in [0, 1], as the pictures are before augmentation.
    views: np.ndarray  # (steps, N, 28, 28) float32: view[step][i] is picture i as batch `step` presents it.
    levers: tuple[tuple[str, str], ...]  # (lever with its setting, what it is for), one per lever the preset uses.


def augmentation_preview(images: np.ndarray, preset: str = "full", steps: int = 4) -> AugmentationPreview:
    """`images` (uint8 (N, 28, 28)) as `steps` successive batches of the preset's training would present them."""
    config = get_preset(preset)
    augmentation = Augmentation.of(config)
    if augmentation is None:
        raise ConfigError(f"The {preset} preset trains on the pictures as they are: no augmentation to show.")
    batch = scale_images(np.asarray(images, np.uint8))
    views = np.stack(
        [np.asarray(augment_batch(batch, step, config.seed, augmentation))[..., 0] for step in range(steps)]
    )
    levers = [
        ("Horizontal flip (half the pictures)", "A mirrored shirt is still a shirt: the network learns both sides."),
    ]
    if augmentation.shift_pixels:
        levers.append(
            (
                f"Shift by up to ±{augmentation.shift_pixels} pixel{'s' if augmentation.shift_pixels > 1 else ''}",
                "Items are centred, but not exactly: the answer should not depend on a pixel's offset.",
            )
        )
    if augmentation.erase_probability:
        levers.append(
            (
                f"Random erasing ({augmentation.erase_probability:.0%} of pictures)",
                "A noise patch hides part of the item, so no single region can carry the answer alone.",
            )
        )
    originals = np.asarray(batch)[..., 0].reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return AugmentationPreview(preset, originals, views, tuple(levers))
