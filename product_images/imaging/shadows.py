"""Telling changes of light (cast shadows, hot spots, seams) from product parts.

On a smooth background a shadow and a white or grey product part both differ from the
background by lightness alone. What separates them is the edge: a cast shadow is soft, its
darkening ramps up smoothly from the background, while a product part is bounded by a sharp
outline. Edges (rough pixels) split the light-only pixels into pieces; a piece ringed mostly by
smooth background is a shadow (or, lighter, a hot spot), a piece ringed by its own outline
and by the rest of the product is the product.
"""

from __future__ import annotations

import cv2
import numpy as np

from product_images.imaging.background_model import Difference
from product_images.imaging.colour_distance import colour_distance
from product_images.imaging.labels import labelled

__all__ = ["clear_of_edges", "faded_share", "light_changes", "reaching_the_frame", "smooth_pixels"]

_SOFT_SIGMA = 1.5  # px: the scale at which a shadow's ramp still looks smooth
_CLEARANCE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))  # gaps this wide close
_SPREAD = 6  # px a shadow may grow over pixels of its own colour
_REAL_PART = 0.002  # light-only parts smaller than this share of the image are not judged
_RINGED = 0.6  # a piece is a shadow or a spot when this share of its ring is background


def smooth_pixels(lab: np.ndarray, noise: float) -> np.ndarray:
    """Pixels away from any sharp edge: lightness barely differs from its blurred self."""
    light = np.ascontiguousarray(lab[..., 0])
    roughness = np.abs(light - cv2.GaussianBlur(light, (0, 0), _SOFT_SIGMA))
    return roughness < max(2.5, 2.0 * noise)


def light_changes(
    lab: np.ndarray,
    diff: Difference,
    candidates: np.ndarray,
    smooth: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Candidates that are the background under other light: shadows, hot spots, and seams
    running into the frame (a plank gap, the fold of a backdrop)."""
    light = diff.light_only & candidates
    outside = reaching_the_frame(~candidates) & smooth
    shadow = _soft_shadows(light & diff.darker, candidates, smooth, outside)
    # A white product on grey is lighter too, but its outline is rough: no allowance for it.
    spots = _ringed_by(light & ~diff.darker, outside, np.zeros_like(light))
    changes = shadow | spots | reaching_the_frame(light)
    return _spread_over_like(changes, light, lab, threshold)


def _soft_shadows(
    pieces: np.ndarray, candidates: np.ndarray, smooth: np.ndarray, outside: np.ndarray
) -> np.ndarray:
    """Darker pieces surrounded by background or by shadow.

    Edges (rough pixels) split those pixels into pieces. A cast shadow's piece is ringed by
    smooth background; a grey product part is ringed by its own outline, which is rough on
    both sides, and by the rest of the product. A weak stretch of outline lets the
    background touch a product part, but rarely along most of its ring. A shadow's core,
    too curved to pass for smooth, is ringed by the shadow's smooth outer part.
    """
    # Rough pieces' pixels (a shadow's core, a grey part's outline) say nothing either way;
    # background-coloured patches inside the product are not the background.
    split = pieces & clear_of_edges(smooth)
    shadow = _grow(split, outside, pieces & ~split) & candidates
    return shadow | _grow(pieces & ~shadow, shadow, np.zeros_like(shadow))


def _spread_over_like(
    shadow: np.ndarray, light: np.ndarray, lab: np.ndarray, threshold: float
) -> np.ndarray:
    """The shadow grown over neighbouring light-only pixels of its own colour: the sharp
    rim where a contact shadow meets the product is shadow too, but a white part beside a
    dark shadow is not."""
    box = (3, 3)
    shadow = shadow.copy()
    for _ in range(_SPREAD):
        weight = cv2.boxFilter(shadow.astype(np.float32), -1, box, normalize=False)
        rows, cols = np.nonzero(light & ~shadow & (weight > 0))  # the frontier
        if len(rows) == 0:
            break
        summed = cv2.boxFilter(lab * shadow[..., None], -1, box, normalize=False)
        # Only the frontier can join: its colour is compared, not the whole image's (a
        # thin band; the same arithmetic per pixel, so the same answer).
        near = summed[rows, cols] / np.maximum(weight[rows, cols], 1)[:, None]
        alike = colour_distance(lab[rows, cols] - near) < threshold
        shadow[rows[alike], cols[alike]] = True
    return shadow


def clear_of_edges(smooth: np.ndarray) -> np.ndarray:
    """Smooth pixels two pixels clear of any edge: an outline that fades for a few pixels
    (where a shadow meets a white product) still separates what lies on either side."""
    return cv2.erode(smooth.astype(np.uint8), _CLEARANCE).astype(bool)


def reaching_the_frame(mask: np.ndarray) -> np.ndarray:
    """The parts of `mask` connected to the edge of the frame."""
    _count, labels = cv2.connectedComponents(mask.astype(np.uint8), 4)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touching = np.unique(edge[edge > 0])
    return labelled(labels, touching)


def _grow(
    pieces: np.ndarray, known: np.ndarray, neutral: np.ndarray, rounds: int = 3
) -> np.ndarray:
    """`known` and the pieces ringed by it, repeatedly (a piece can ring the next)."""
    for _ in range(rounds):
        ringed = _ringed_by(pieces & ~known, known, neutral)
        if not ringed.any():
            break
        known = known | ringed
    return known


def _ringed_by(
    pieces: np.ndarray, known: np.ndarray, neutral: np.ndarray, share: float = _RINGED
) -> np.ndarray:
    """The connected pieces whose outer ring lies mostly in `known`, not counting `neutral`
    ring pixels (as long as at least a third of the ring counts)."""
    labels, total, inside, counted = _ring_counts(pieces, known, neutral)
    ringed = (inside > share * np.maximum(counted, 1)) & (counted >= total / 3)
    ringed[0] = False
    return ringed[labels]


def faded_share(pieces: np.ndarray, known: np.ndarray) -> float:
    """The largest share of its ring in `known` (smooth background: no edge between them)
    among pieces of a real size."""
    labels, total, inside, _ = _ring_counts(pieces, known, np.zeros_like(pieces))
    area = np.bincount(labels.ravel(), minlength=len(total))
    real = area >= _REAL_PART * pieces.size
    real[0] = False
    return float((inside[real] / np.maximum(total[real], 1)).max()) if real.any() else 0.0


def _ring_counts(
    pieces: np.ndarray, known: np.ndarray, neutral: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels of the pieces, and per label: ring pixels, those in `known`, those counted."""
    count, labels = cv2.connectedComponents(pieces.astype(np.uint8), 8)
    around = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    ring = (around > 0) & (labels == 0)
    index = around[ring]
    total = np.bincount(index, minlength=count).astype(np.float64)
    inside = np.bincount(index, weights=known[ring], minlength=count)
    counted = total - np.bincount(index, weights=neutral[ring], minlength=count)
    return labels, total, inside, counted
