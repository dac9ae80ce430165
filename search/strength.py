"""How strong a similarity score is: one scale for the terminal, the page and galleries."""

from __future__ import annotations

from typing import Literal

__all__ = ["LIKELY_REUPLOAD", "LOOKS_ALIKE", "Strength", "strength"]

Strength = Literal["strong", "medium", "weak"]

# A cosine at or above this is most likely the same thumbnail re-uploaded (duplicates' default).
LIKELY_REUPLOAD = 0.92
# At or above this the two thumbnails share their look (scene, layout, colours).
LOOKS_ALIKE = 0.75


def strength(score: float) -> Strength:
    """``strong`` (a likely re-upload), ``medium`` (looks alike) or ``weak``."""
    if score >= LIKELY_REUPLOAD:
        return "strong"
    if score >= LOOKS_ALIKE:
        return "medium"
    return "weak"
