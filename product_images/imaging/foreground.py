"""The product's mask at the analysis resolution, from the background model's difference map.

1. Candidates: pixels that differ from the background by more than its noise allows.
2. On a smooth background, changes of light (cast shadows, hot spots) are told from product
   parts by their edges (see shadows.py) and the rest is the product: a surface that
   predicts the background is sharper than GrabCut. On a textured one, GrabCut decides.
3. Cleaning: specks dropped; enclosed holes filled unless they show the background itself
   (the opening of a mug handle, the loop of a strap).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from product_images.imaging.background_model import BackgroundModel, Difference
from product_images.imaging.grabcut import grabcut_at
from product_images.imaging.labels import labelled
from product_images.imaging.shadows import (
    clear_of_edges,
    faded_share,
    light_changes,
    reaching_the_frame,
    smooth_pixels,
)

__all__ = ["ForegroundMask", "drop_specks", "fill_holes", "find_foreground"]

_MIN_COMPONENT = 0.04  # components smaller than this share of the largest are specks
_MIN_HOLE = 0.001  # holes smaller than this share of the image are always filled


@dataclass(frozen=True)
class ForegroundMask:
    """The analysis-resolution mask and what it was made from (for the confidence checks)."""

    mask: np.ndarray  # HxW bool
    colour: np.ndarray  # HxW bool: the colour model's own answer, before GrabCut
    shadow: np.ndarray  # HxW bool: pixels taken for a cast shadow or other light change
    components: int  # separate objects kept
    edges: np.ndarray | None = None  # HxW bool: sharp detail (smooth backgrounds only)
    faded: float = 0.0  # largest share of a kept light-only part's ring with no edge


def find_foreground(
    rgb: np.ndarray, lab: np.ndarray, model: BackgroundModel, diff: Difference, working_side: int
) -> ForegroundMask:
    """The product's mask in an analysis-resolution photo; GrabCut runs at `working_side`."""
    candidates = diff.distance > model.threshold
    if not model.smooth:  # on a texture, light changes are everywhere: GrabCut decides
        shadow = np.zeros_like(candidates)
        mask = grabcut_at(working_side, rgb, candidates, shadow, diff.distance, model.threshold)
        return _cleaned(mask, candidates, shadow, diff, model)
    smooth = smooth_pixels(lab, model.noise)
    shadow = light_changes(lab, diff, candidates, smooth, model.threshold)
    found = _cleaned(candidates & ~shadow, candidates & ~shadow, shadow, diff, model)
    kept_light = diff.light_only & found.mask & clear_of_edges(smooth)
    outside = reaching_the_frame(~candidates) & smooth
    return replace(found, edges=~smooth, faded=faded_share(kept_light, outside))


def _cleaned(
    mask: np.ndarray,
    colour: np.ndarray,
    shadow: np.ndarray,
    diff: Difference,
    model: BackgroundModel,
) -> ForegroundMask:
    mask, components = drop_specks(mask)
    mask = fill_holes(mask, diff.distance, model.threshold)
    return ForegroundMask(mask, colour, shadow, components)


def drop_specks(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Only components of a real size stay; returns the mask and how many there are."""
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if len(areas) == 0:
        return np.zeros(mask.shape, bool), 0
    keep = np.flatnonzero(areas >= _MIN_COMPONENT * areas.max()) + 1
    return labelled(labels, keep), len(keep)


def fill_holes(mask: np.ndarray, distance: np.ndarray, threshold: float) -> np.ndarray:
    """Fill enclosed holes, except those that show the background (handle and strap loops)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), 4)
    h, w = mask.shape
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right = left + stats[:, cv2.CC_STAT_WIDTH]
    bottom = top + stats[:, cv2.CC_STAT_HEIGHT]
    area = stats[:, cv2.CC_STAT_AREA]
    enclosed = (left > 0) & (top > 0) & (right < w) & (bottom < h)
    mean_distance = np.bincount(labels.ravel(), distance.ravel(), count) / np.maximum(area, 1)
    shows_background = (mean_distance < 0.5 * threshold) & (area >= _MIN_HOLE * mask.size)
    fill = enclosed & ~shows_background
    fill[0] = False  # label 0 is the mask itself
    return mask | fill[labels]
