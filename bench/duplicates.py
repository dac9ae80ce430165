"""Time `duplicate_components` on 100,000 random clustered vectors (prints the figure)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from search.duplicates import duplicate_components

__all__ = ["main"]


def main() -> None:
    """Make n vectors in clusters of about five near-copies and time the grouping."""
    parser = argparse.ArgumentParser(prog="python -m bench.duplicates")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--threshold", type=float, default=0.92)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((args.n // 5, args.dim)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), args.n)]
    vectors += 0.05 * rng.standard_normal(vectors.shape).astype(np.float32)
    start = time.perf_counter()
    groups = duplicate_components(vectors, args.threshold)
    seconds = time.perf_counter() - start
    print(f"{args.n} vectors ({args.dim}-d): {len(groups)} groups covering "
          f"{sum(len(g) for g, _ in groups)} vectors in {seconds:.1f} s")


if __name__ == "__main__":
    main()
