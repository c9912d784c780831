"""What Fashion-MNIST is: its classes, image size, split sizes and the official files' content hashes.

A leaf module (no I/O, nothing of ours imported), so models, evaluation and the cache key can use these facts
without importing the loader.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 28

TRAIN_SET_IMAGES = 60_000  # Official training split (validation is carved out of it).
TEST_SET_IMAGES = 10_000  # Official test split, never trained on.


@dataclass(frozen=True)
class IdxFile:
    """One of the four official files and what its decompressed content must be."""

    filename: str  # Name of the gzip file, as on every mirror.
    sha256: str  # SHA-256 of the decompressed IDX bytes.
    magic: int  # IDX magic number: 2049 for labels, 2051 for images.
    count: int  # Number of items the file must hold.


FILES: dict[str, IdxFile] = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        2051,
        TRAIN_SET_IMAGES,
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        2049,
        TRAIN_SET_IMAGES,
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        2051,
        TEST_SET_IMAGES,
    ),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        2049,
        TEST_SET_IMAGES,
    ),
}


def data_fingerprint() -> str:
    """A short digest of the dataset content, part of every model cache key."""
    return hashlib.sha256(",".join(spec.sha256 for spec in FILES.values()).encode()).hexdigest()[:16]
