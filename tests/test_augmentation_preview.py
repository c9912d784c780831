"""The Dataset page's augmentation preview: drawn by the training code, every view is the original picture flipped
or not and shifted by at most the preset's pixels (zeros filling in), and each lever the preset uses has its note."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.config import get_preset
from fmnist_core.errors import ConfigError
from fmnist_core.training.augmentation_preview import augmentation_preview
from tests.conftest import make_tiny_data


def shifted(picture: np.ndarray, rows: int, columns: int, pad: int) -> np.ndarray:
    padded = np.pad(picture, pad)
    return padded[pad + rows : pad + rows + 28, pad + columns : pad + columns + 28]


def test_every_view_is_a_flip_and_a_small_shift_of_its_picture():
    (images, _), _ = make_tiny_data(8, 1)
    preview = augmentation_preview(images, "full", steps=3)
    shift = get_preset("full").shift_pixels
    assert preview.views.shape == (3, 8, 28, 28) and np.array_equal(preview.originals, images / np.float32(255))
    flips = 0
    for view in preview.views:
        for picture, seen in zip(preview.originals, view, strict=True):
            candidates = [
                (flipped, shifted(side, rows, columns, shift))
                for flipped, side in ((False, picture), (True, picture[:, ::-1]))
                for rows in range(-shift, shift + 1)
                for columns in range(-shift, shift + 1)
            ]
            matches = [flipped for flipped, candidate in candidates if np.allclose(candidate, seen)]
            assert matches, "a view that no flip and shift of its picture explains"
            flips += matches[0]
    assert 0 < flips < 24  # Some pictures were flipped, not all.
    assert [lever.split(" ")[0] for lever, _ in preview.levers] == ["Horizontal", "Shift"]


def test_a_preset_without_augmentation_has_nothing_to_show():
    (images, _), _ = make_tiny_data(2, 1)
    with pytest.raises(ConfigError, match="no augmentation"):
        augmentation_preview(images, "quick")
