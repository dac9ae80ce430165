"""How strong a similarity score is: one scale for the terminal, the page and galleries."""

from __future__ import annotations

from typing import Literal

__all__ = ["LIKELY_REUPLOAD", "LOOKS_ALIKE", "Strength", "strength"]

Strength = Literal["strong", "medium", "weak"]

# Both measured for the default model on the evaluation sets by `make thresholds`
# (python -m search.eval.threshold; docs/evaluation.md, "The re-upload threshold").
# A cosine at or above this is most likely the same thumbnail re-uploaded: the lowest score
# at which at most 1 in 100,000 non-matching pairs scores as high (duplicates' default, the
# watchlist's default).
LIKELY_REUPLOAD = 0.75
# At or above this the two thumbnails share their look (scene, layout, colours): the lowest
# score at which at most 1 in 100 unrelated pairs scores as high.
LOOKS_ALIKE = 0.50


def strength(score: float) -> Strength:
    """``strong`` (a likely re-upload), ``medium`` (looks alike) or ``weak``."""
    if score >= LIKELY_REUPLOAD:
        return "strong"
    if score >= LOOKS_ALIKE:
        return "medium"
    return "weak"
