"""Deterministic Embedders for tests that must not load TensorFlow."""

from __future__ import annotations

import threading
import zlib

import numpy as np
from PIL import Image

from indexer.models.base import squash_rgb


class TinyEmbedder:
    """Embeds an image as its 8x8 RGB thumbnail (192-d): cheap, deterministic, image-aware."""

    model_id = "tiny-test"
    dim = 192
    input_size = (8, 8)

    def __init__(self) -> None:
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Squash to 8x8 RGB, centred floats."""
        small = image.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR)
        return (np.asarray(small, dtype=np.float32) - 127.0) / 128.0

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Flatten each image; records batch sizes so tests can see batching."""
        with self._lock:
            self.batches.append(len(batch))
        return batch.reshape(len(batch), -1).astype(np.float32)


class StandInEmbedder:
    """Stands in for a real model (its id and sizes) without loading it: each image's
    features are seeded from its pixels, so the same image always gets the same vector."""

    def __init__(self, model_id: str, dim: int, input_size: tuple[int, int]) -> None:
        self.model_id = model_id
        self.dim = dim
        self.input_size = input_size

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The model's input size, RGB floats 0..255."""
        return squash_rgb(image, self.input_size)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """(n, dim) float32 features, one seeded generator per image."""
        features = np.empty((len(batch), self.dim), np.float32)
        for row, image in zip(features, batch, strict=True):
            row[:] = np.random.default_rng(zlib.crc32(image.tobytes())).standard_normal(self.dim)
        return features
