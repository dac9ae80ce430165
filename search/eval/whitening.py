"""PCA-whitening learned on a corpus' own vectors (Jégou & Chum 2012; Radenović et al.)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import InputError, VectorIndexError

__all__ = ["PcaWhitening"]

FloatMatrix = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class PcaWhitening:
    """A learned whitening: ``normalise((x - mean) @ projection)``.

    Centre on the corpus mean, rotate onto the principal axes, divide each axis by the square
    root of its variance (plus a floor, so near-empty directions are not blown up), keep the
    leading ``dims`` axes and L2-normalise again. Pure numpy; vectors in and out are float32.
    """

    mean: FloatMatrix  # (d,)
    projection: FloatMatrix  # (d, k)

    @property
    def dims(self) -> int:
        """Output dimension k."""
        return int(self.projection.shape[1])

    @classmethod
    def fit(cls, vectors: np.ndarray, dims: int | None = None,
            floor: float = 0.1) -> PcaWhitening:
        """Learn from (n, d) vectors; ``floor`` is added to each variance, as a fraction of
        the mean variance of the kept axes (0 = pure whitening)."""
        matrix = np.asarray(vectors, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] < 3:
            raise InputError(f"whitening needs at least 3 vectors (n, d), got {matrix.shape}")
        mean = matrix.mean(axis=0)
        centred = matrix - mean
        _, singular, axes = np.linalg.svd(centred, full_matrices=False)
        variance = singular**2 / (matrix.shape[0] - 1)
        rank = int((variance > variance[0] * 1e-10).sum())
        keep = min(rank, dims or rank)
        if keep < 1:
            raise InputError("whitening needs vectors that are not all the same")
        variance = variance[:keep]
        regularised = variance + floor * variance.mean()
        projection = axes[:keep].T / np.sqrt(regularised)
        return cls(mean.astype(np.float32), projection.astype(np.float32))

    def apply(self, vectors: np.ndarray) -> FloatMatrix:
        """(n, d) -> (n, k) whitened, L2-normalised float32."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        out = (matrix - self.mean) @ self.projection
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: FloatMatrix = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
        return result

    def save(self, path: Path) -> None:
        """Write the mean and projection as ``.npz``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                np.savez(handle, mean=self.mean, projection=self.projection)
        except OSError as exc:
            raise VectorIndexError(f"cannot write the whitening to {path}: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> PcaWhitening:
        """Read a whitening written by ``save``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["mean"].astype(np.float32),
                           data["projection"].astype(np.float32))
        except (OSError, KeyError, ValueError) as exc:
            raise VectorIndexError(f"cannot read the whitening {path}: {exc}") from exc
