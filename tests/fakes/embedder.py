"""A tiny deterministic Embedder for stage tests that must not load TensorFlow."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image


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
