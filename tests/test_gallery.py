"""The Evaluate page's galleries (fmnist_core.evaluate.gallery) on hand-made probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.errors import ConfigError
from fmnist_core.evaluate.gallery import gallery

# Four images: right and sure, wrong and sure, wrong and unsure, right but nearly a tie.
PROBABILITIES = np.array(
    [
        [0.90, 0.10] + [0.0] * 8,
        [0.05, 0.95] + [0.0] * 8,
        [0.30, 0.50, 0.20] + [0.0] * 7,
        [0.0, 0.0, 0.51, 0.49] + [0.0] * 6,
    ]
)
LABELS = np.array([0, 0, 2, 2])


def test_confident_mistakes_are_the_wrong_answers_surest_first():
    images = gallery(PROBABILITIES, LABELS, "confident-wrong", 10)
    assert [(image.index, image.label, image.predicted) for image in images] == [(1, 0, 1), (2, 2, 1)]
    assert [image.confidence for image in images] == [0.95, 0.5]
    assert set(images[0].to_dict("confident-wrong")) == {"index", "label", "predicted", "confidence"}


def test_ambiguous_images_are_the_smallest_gaps_first_right_or_wrong():
    images = gallery(PROBABILITIES, LABELS, "ambiguous", 2)
    assert [image.index for image in images] == [3, 2]
    assert images[0].second == 3 and images[0].margin == pytest.approx(0.02)
    assert images[1].to_dict("ambiguous") == {
        "index": 2,
        "label": 2,
        "predicted": 1,
        "confidence": 0.5,
        "second": 0,
        "margin": pytest.approx(0.2),
    }


@pytest.mark.parametrize(("kind", "top"), [("funny", 3), ("ambiguous", 0)])
def test_an_unknown_gallery_or_an_empty_one_is_refused(kind, top):
    with pytest.raises(ConfigError):
        gallery(PROBABILITIES, LABELS, kind, top)
