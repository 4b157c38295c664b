"""Where to crop a detail shot: the windows a merchandiser would show (a label, a logo,
hardware, a texture), never cutting through a mark at the border, ranked.

Marks are found as clusters of strong local contrast inside the product (letters close into
words, a logo's strokes into one blob). A candidate window, at the aspect of the slots that will
show it (so no later crop cuts anything), either holds a mark whole or stays clear of it; it
lies (almost) wholly on the product; among those, windows with more detail and more whole
marks rank first, and later candidates must differ from earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["DetailCandidate", "detail_candidates", "find_marks"]

Box = tuple[int, int, int, int]
_WORK = 600  # the product's longer side while searching, px
_SIZES = (0.4, 0.55, 0.7, 0.85, 0.95)  # window sides tried, share of the product's shorter side
_LINE = 10  # a thin mark this many times longer than thick is an edge or seam, not a word
_COVER = 0.92  # least share of a window on the product
_SMALLEST = 0.12  # a window's shorter side is at least this share of the product's longer
# Tried in turn: least share on the product, confidence, review reason.
_PASSES = (
    (_COVER, 1.0, ""),
    (0.75, 0.85, "detail crop only {cover:.0%} on the product"),
    (0.5, 0.6, "detail crop only {cover:.0%} on the product"),
)
_OVERLAP = 0.3  # most a later candidate may overlap (IoU) an earlier one
_CONTRAST = 40  # grey levels across 3 px that make a mark's edge
_ROOM = 2  # px (at work scale) kept clear around a mark
Scored = tuple[float, float, int, Box]  # score, cover, marks held, window


@dataclass(frozen=True)
class DetailCandidate:
    """A crop of the source, in source pixels, and why it ranks where it does."""

    box: Box
    score: float
    cover: float  # share on the product
    marks: int  # marks (text, logos, hardware) it holds whole


def find_marks(grey: np.ndarray, inside: np.ndarray) -> list[Box]:
    """Boxes of clusters of strong local contrast inside the product (words, logos,
    hardware). Contrast is measured as the range of a 3x3 neighbourhood: print and hardware
    edges span tens of levels, fabric, card or brushed metal texture only a few."""
    kernel = np.ones((3, 3), np.uint8)
    contrast = cv2.dilate(grey, kernel).astype(np.int16) - cv2.erode(grey, kernel)
    strong = (contrast >= _CONTRAST) & inside
    gap = max(3, round(0.015 * max(grey.shape)))  # letters of a word merge, not words
    return _clusters(strong, gap, max(1, int(inside.sum())))


def _clusters(strong: np.ndarray, gap: int, area: int) -> list[Box]:
    """Clusters of `strong` pixels closed over `gap`, as boxes. A cluster too big to be one
    mark (a watch dial whose hands touch its print and its ring) is split again with half
    the gap, so the words on it still count."""
    # Close along lines, hardly across: a line of text stays apart from a stripe under it.
    closing = np.ones((3, gap), np.uint8)
    closed = cv2.morphologyEx(strong.astype(np.uint8), cv2.MORPH_CLOSE, closing)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    marks: list[Box] = []
    for index, (x, y, w, h, pixels) in enumerate(stats[1:count], 1):
        thickness = pixels / max(w, h)  # mean, along its length
        line = thickness <= 6 and max(w, h) >= _LINE * thickness  # an edge, stripe or seam
        if w * h > 0.3 * area and gap > 3:
            marks += _clusters(strong & (labels == index), max(3, gap // 2), area)
        elif 0.0003 * area <= pixels and w * h <= 0.3 * area and not line:
            # A little room around: no word touching the border, whatever the rounding.
            marks.append((int(x) - _ROOM, int(y) - _ROOM, int(x + w) + _ROOM, int(y + h) + _ROOM))
    return marks


def _energy(grey: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def _window_sums(
    values: np.ndarray, size: tuple[int, int], xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    table = cv2.integral(values.astype(np.float32))
    w, h = size
    return table[ys + h, xs + w] - table[ys, xs + w] - table[ys + h, xs] + table[ys, xs]


def _mark_terms(
    marks: list[Box], size: tuple[int, int], xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window: marks held whole, their area, and whether the border cuts any mark."""
    w, h = size
    held = np.zeros(xs.shape, np.float32)
    area = np.zeros(xs.shape, np.float32)
    cut = np.zeros(xs.shape, bool)
    for left, top, right, bottom in marks:
        whole = (xs <= left) & (xs + w >= right) & (ys <= top) & (ys + h >= bottom)
        touches = (xs < right) & (xs + w > left) & (ys < bottom) & (ys + h > top)
        held += whole
        area += whole * (right - left) * (bottom - top)
        cut |= touches & ~whole
    return held, area, cut


def _score_windows(
    energy: np.ndarray, inside: np.ndarray, marks: list[Box], size: tuple[int, int], need: float
) -> list[Scored]:
    """Every allowed window of one size: (score, cover, marks, box) at work scale."""
    height, width = inside.shape
    w, h = size
    step = max(1, min(w, h) // 10)
    ys, xs = np.mgrid[0 : height - h + 1 : step, 0 : width - w + 1 : step]
    cover = _window_sums(inside, size, xs, ys) / (w * h)
    mean_energy = float(energy[inside].mean()) if inside.any() else 1.0
    detail = _window_sums(energy * inside, size, xs, ys) / (w * h * max(mean_energy, 1e-3))
    held, area, cut = _mark_terms(marks, size, xs, ys)
    score = detail + 1.5 * area / (w * h) + 0.25 * np.minimum(held, 3)
    ok = (cover >= need) & ~cut
    return [
        (float(score[i]), float(cover[i]), int(held[i]), _window(xs[i], ys[i], size))
        for i in zip(*np.nonzero(ok), strict=True)
    ]


def _window(x: np.integer, y: np.integer, size: tuple[int, int]) -> Box:
    return int(x), int(y), int(x) + size[0], int(y) + size[1]


def _iou(a: Box, b: Box) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _distinct(scored: list[Scored], count: int) -> list[Scored]:
    """The best windows, each overlapping earlier ones little; if that leaves fewer than
    two, overlapping more (two views of one label beat a single one)."""
    ranked = sorted(scored, key=lambda s: -s[0])
    chosen: list[Scored] = []
    for overlap in (_OVERLAP, 0.6):
        for item in ranked:
            if len(chosen) < count and all(_iou(item[3], o[3]) < overlap for o in chosen):
                chosen.append(item)
        if len(chosen) >= 2:
            break
    return chosen


def detail_candidates(
    rgb: np.ndarray, alpha: np.ndarray, box: Box, count: int = 3, aspect: float = 1.0
) -> tuple[list[DetailCandidate], float, str]:
    """Up to `count` ranked crops of the product of `aspect` (width / height; source
    pixels), best first, the confidence they deserve and why not 1.0 (the product is too
    thin, a lamp's arm, and background had to be let in); empty when nothing fits."""
    left, top, right, bottom = _padded(box, rgb.shape, 0.15)  # thin products: room around
    scale = min(1.0, _WORK / max(right - left, bottom - top))
    crop = cv2.resize(
        rgb[top:bottom, left:right], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
    )
    mask = cv2.resize(alpha[top:bottom, left:right], (crop.shape[1], crop.shape[0])) > 200
    inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    ring = cv2.erode(inside.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    energy, marks = _energy(grey), find_marks(grey, ring)  # the outline is not a mark
    for need, confidence, reason in _PASSES:
        scored = _all_windows(energy, inside, marks, need, aspect)
        if scored:
            found = [
                DetailCandidate(_to_source(b, scale, left, top), s, c, m)
                for s, c, m, b in _distinct(scored, count)
            ]
            return found, confidence, reason.format(cover=found[0].cover)
    return [], 0.0, ""


def _padded(box: Box, shape: tuple[int, ...], share: float) -> Box:
    """`box` grown by `share` of its longer side, inside the image."""
    pad = round(share * max(box[2] - box[0], box[3] - box[1]))
    return (
        max(0, box[0] - pad),
        max(0, box[1] - pad),
        min(shape[1], box[2] + pad),
        min(shape[0], box[3] + pad),
    )


def _all_windows(
    energy: np.ndarray, inside: np.ndarray, marks: list[Box], need: float, aspect: float
) -> list[Scored]:
    """Windows of each size (the shorter side a share of the product's shorter side; when
    the product is thin, of its longer side too) with at least `need` on the product."""
    ys, xs = np.nonzero(inside)
    if len(ys) == 0:
        return []
    shorter = min(np.ptp(ys), np.ptp(xs)) + 1  # the product's, not the padded region's
    longer = max(np.ptp(ys), np.ptp(xs)) + 1
    sides = {max(8, round(share * shorter)) for share in _SIZES}
    if need < _COVER:
        sides |= {max(8, round(share * longer)) for share in (0.2, 0.3)}
    scored: list[Scored] = []
    for side in sorted(s for s in sides if s >= _SMALLEST * longer):
        size = (round(side * max(1.0, aspect)), round(side * max(1.0, 1 / aspect)))
        if size[0] < inside.shape[1] and size[1] < inside.shape[0]:
            scored += _score_windows(energy, inside, marks, size, need)
    return scored


def _to_source(box: Box, scale: float, left: int, top: int) -> Box:
    x0, y0 = left + round(box[0] / scale), top + round(box[1] / scale)
    return x0, y0, x0 + round((box[2] - box[0]) / scale), y0 + round((box[3] - box[1]) / scale)
