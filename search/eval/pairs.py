"""Cosine scores of the pairs of a set's images: the report's histograms and the threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_PAIRS", "label_pair_scores", "pair_scores", "upper_pairs"]

MAX_PAIRS = 2_000_000  # pairs a histogram draws; larger sets are subsampled
_PAIR_CHUNK = 8192  # pairs scored at a time: two (8192, dim) float64 gathers


def upper_pairs(n: int, max_pairs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) with i < j of ``n`` items, or ``max_pairs`` of them drawn at random
    (seeded, so the same each run) when there are more."""
    upper_i, upper_j = np.triu_indices(n, k=1)
    if max_pairs is not None and len(upper_i) > max_pairs:
        pick = np.random.default_rng(0).choice(len(upper_i), max_pairs, replace=False)
        upper_i, upper_j = upper_i[pick], upper_j[pick]
    return upper_i, upper_j


def pair_scores(vectors: np.ndarray, upper_i: np.ndarray, upper_j: np.ndarray) -> np.ndarray:
    """The cosine of each pair (rows of L2-normalised ``vectors``), in float64."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if not len(upper_i):
        return np.zeros(0)
    # In chunks: gathering both sides of 2M pairs at once would take 2M x dim floats each.
    return np.concatenate([
        np.einsum("ij,ij->i", matrix[upper_i[start:start + _PAIR_CHUNK]],
                  matrix[upper_j[start:start + _PAIR_CHUNK]])
        for start in range(0, len(upper_i), _PAIR_CHUNK)])


def label_pair_scores(vectors: np.ndarray, labels: Sequence[str],
                      max_pairs: int | None = MAX_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the pairs with the same label and of those with different labels."""
    codes = np.unique(np.asarray(labels, dtype=object), return_inverse=True)[1].reshape(-1)
    upper_i, upper_j = upper_pairs(len(codes), max_pairs)
    scores = pair_scores(vectors, upper_i, upper_j)
    same = codes[upper_i] == codes[upper_j]
    return scores[same], scores[~same]
