"""Picture-in-picture: the sharp rectangular picture on a smooth surround, found and cut out
before embedding. Pure functions on Pillow images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "INSET_MAX_FRACTION",
    "INSET_MIN_FRACTION",
    "find_inset_box",
    "remove_surround",
]

#: The picture takes at least this share of the width and of the height.
INSET_MIN_FRACTION = 0.25
#: ... and at most this share of each: on each axis at least 5 % of the side is surround.
INSET_MAX_FRACTION = 0.95

# Detection runs on a copy reduced to at most this many pixels on its longer side: the
# model sees 224 px, and a re-uploader's blur scales with the frame.
_WORK_SIDE = 320
# A pixel is detail when a channel's absolute second difference (across x or y) is at least
# this (0..255): a gradient, a blurred backdrop or JPEG noise stays below it, a step edge or
# texture does not.
_DETAIL = 24
# A line (row or column) belongs to the surround when at most this share of its pixels
# (and at most _QUIET_MIN of them) is detail.
_QUIET = 0.01
_QUIET_MIN = 2
# A step pixel's colour jumps by at least _STEP more across the line than beside it. Each
# axis needs a straight step on one side at least: step pixels along _STRAIGHT of the
# side's length (a cut-out object on a plain backdrop touches its bounding box at a few
# points only).
_STEP = 8
_STRAIGHT = 0.5
# A side that is no straight step may still be a faint one (the picture's border close to
# the surround's colour) along this share of its length.
_FAINT = 0.25
# How far from the first detail line the step may lie (ringing of JPEG, a resampled edge).
_SLACK = 3
# A quiet run of at most this many lines at an edge is the picture touching that edge.
_TOUCH = 2

IntArray = np.ndarray[Any, np.dtype[np.int16]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def _planes(image: Image.Image) -> IntArray:
    """(3, h, w) int16 colour planes: a maximum over the planes is elementwise and fast."""
    return np.ascontiguousarray(np.asarray(image, dtype=np.int16).transpose(2, 0, 1))


def _steps(planes: IntArray) -> tuple[IntArray, IntArray]:
    """Signed colour steps down (3, h-1, w) and across (3, h, w-1)."""
    return planes[:, 1:] - planes[:, :-1], planes[:, :, 1:] - planes[:, :, :-1]


def _detail(down: IntArray, across: IntArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """(h, w) True where a channel's absolute second difference across y or x is at least
    _DETAIL (0 on any gradient; the outermost lines get only the one along them)."""
    h, w = across.shape[1], down.shape[2]
    detail = np.zeros((h, w), dtype=bool)
    detail[1:-1] |= np.abs(down[:, 1:] - down[:, :-1]).max(axis=0) >= _DETAIL
    detail[:, 1:-1] |= np.abs(across[:, :, 1:] - across[:, :, :-1]).max(axis=0) >= _DETAIL
    return detail


def _loud(count: int, length: int) -> bool:
    """True when a line of ``length`` pixels with ``count`` detail pixels is no surround."""
    return count > max(_QUIET_MIN, _QUIET * length)


def _may_have_surround(image: Image.Image) -> bool:
    """Whether a surround can show on both axes: line _TOUCH from the top or the bottom is
    quiet, and so is one from the left or the right (a cheap test on four thin strips
    that turns away most ordinary pictures before the whole image is looked at)."""
    w, h = image.size
    near, far = _TOUCH - 1, _TOUCH + 2  # the lines around line _TOUCH
    for strips, length in ((((0, near, w, far), (0, h - far, w, h - near)), w),
                           (((near, 0, far, h), (w - far, 0, w - near, h)), h)):
        quiet = False
        for box in strips:
            planes = _planes(image.crop(box))
            detail = _detail(*_steps(planes if length == w else planes.transpose(0, 2, 1)))
            quiet |= not _loud(int(detail[1].sum()), length)
        if not quiet:
            return False
    return True


def _quiet_run(counts: np.ndarray[Any, np.dtype[np.int64]], length: int) -> int:
    """Number of leading lines whose detail count is low enough for a surround."""
    loud = counts > max(_QUIET_MIN, _QUIET * length)  # _loud, for every line at once
    return int(np.argmax(loud)) if loud.any() else len(counts)


def _step_shares(jumps: IntArray) -> tuple[FloatArray, FloatArray]:
    """For each boundary k (between lines k-1 and k; ``jumps[i]`` is the colour jump across
    boundary i + 1, one value per pixel along the line), the share of pixels where it jumps
    by _STEP more than between the next two lines outward: with the surround before the
    boundary (top, left), and with it after (bottom, right). Both indexed by k."""
    lines = jumps.shape[0] + 1
    before, after = np.zeros(lines + 1), np.zeros(lines + 1)
    if jumps.shape[1]:
        before[2:lines] = ((jumps[1:] - jumps[:-1]) >= _STEP).mean(axis=1)
        after[1:lines - 1] = ((jumps[:-1] - jumps[1:]) >= _STEP).mean(axis=1)
    return before, after


def _step_edge(shares: FloatArray, candidates: range) -> tuple[int, float] | None:
    """The outermost boundary among ``candidates`` (outermost first) that is a step along at
    least _FAINT of the line, moved inward to the strongest of its neighbours, with its
    share; None if there is none."""
    for k in candidates:
        if shares[k] >= _FAINT:
            inward = candidates.step
            while k + inward in candidates and shares[k + inward] > shares[k]:
                k += inward
            return k, float(shares[k])
    return None


def find_inset_box(image: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a picture pasted on a smooth surround (the whole image
    if there is none).

    The surround is the lines (rows, columns) at the edges with almost no detail: a solid
    colour, a gradient, a blurred backdrop. Each side of the picture is a step edge at the
    surround's inner end, or the frame's edge where there is none. The picture is accepted
    only when the surround shows on both axes (at least 5 % of the width and of the
    height: a plain sky above a photo, a wall beside it, is not one), each axis has a
    straight step (along at least half of a side) and the box is at least a quarter of
    each side.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    factor = max(1, -(-max(width, height) // _WORK_SIDE))  # ceil
    small = rgb.reduce(factor) if factor > 1 else rgb
    h, w = small.height, small.width
    whole = (0, 0, width, height)
    if h < 8 or w < 8 or not _may_have_surround(small):
        return whole
    down, across = _steps(_planes(small))
    detail = _detail(down, across)
    rows, cols = detail.sum(axis=1), detail.sum(axis=0)
    top, left = _quiet_run(rows, w), _quiet_run(cols, h)
    bottom, right = h - _quiet_run(rows[::-1], w), w - _quiet_run(cols[::-1], h)
    if bottom - top < INSET_MIN_FRACTION * h or right - left < INSET_MIN_FRACTION * w:
        return whole  # all surround, or a sliver: a plain image, not a picture on one
    # The quiet run may go on into a plain part of the picture (a sky), so each side's step
    # is searched from the frame's edge to just past the run's end; a side with a run of
    # one or two lines is the picture touching the frame's edge.
    box = [0, 0, w, h]
    straight = [False, False]  # per axis: a straight step on at least one side
    for axis, first, last, lines, span in ((0, top, bottom, h, (left, right)),
                                           (1, left, right, w, (top, bottom))):
        jumps = np.abs(down[:, :, span[0]:span[1]] if axis == 0
                       else across[:, span[0]:span[1]].transpose(0, 2, 1)).max(axis=0)
        before, after = _step_shares(jumps)
        if first > _TOUCH:
            step = _step_edge(before, range(2, min(first + 1 + _SLACK, lines - 2) + 1))
            # No step at all: the picture touches the frame's edge with a plain part.
            box[1 - axis] = 0 if step is None else step[0]
            straight[axis] |= step is not None and step[1] >= _STRAIGHT
        if lines - last > _TOUCH:
            step = _step_edge(after, range(lines - 2, max(last - 1 - _SLACK, 1) - 1, -1))
            box[3 - axis] = lines if step is None else step[0]
            straight[axis] |= step is not None and step[1] >= _STRAIGHT
    if not all(straight):
        return whole  # an object on a plain backdrop, a horizon, a plain wall
    left, top, right, bottom = box
    for low, high, side in ((left, right, w), (top, bottom, h)):
        if not INSET_MIN_FRACTION * side <= high - low <= INSET_MAX_FRACTION * side:
            return whole
    return (min(width, left * factor), min(height, top * factor),
            min(width, right * factor), min(height, bottom * factor))


def remove_surround(image: Image.Image) -> Image.Image:
    """The picture of a picture-in-picture image (RGB), or the whole image if none is found."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    box = find_inset_box(rgb)
    return rgb if box == (0, 0, *rgb.size) else rgb.crop(box)
