"""The product's mask at working resolution, from the background model's difference map.

1. Candidates: pixels that differ from the background by more than its noise allows.
2. Shadows: shadow-like candidates (darker, same hue) that the background reaches without
   crossing an edge. A cast shadow is soft: its darkening ramps up smoothly from the
   background. A white or grey product part differs as little in colour, but it is bounded
   by a sharp outline, which the flood from the background cannot cross.
3. GrabCut settles the uncertain pixels with colour models and edges; pixels far from the
   background in colour stay product, pixels the model explains stay background.
4. Cleaning: specks dropped; enclosed holes filled unless they show the background itself
   (the opening of a mug handle, the loop of a strap).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from product_images.imaging.background_model import BackgroundModel, Difference, border_mask

__all__ = ["ForegroundMask", "find_foreground"]

_MIN_COMPONENT = 0.04  # components smaller than this share of the largest are specks
_SOFT_SIGMA = 1.5  # px: the scale at which a shadow's ramp still looks smooth
_MIN_HOLE = 0.001  # holes smaller than this share of the image are always filled
_RINGED = 0.6  # a light-only piece is a shadow or a spot when this share of its ring is background


@dataclass(frozen=True)
class ForegroundMask:
    """The working-resolution mask and what it was made from (for the confidence checks)."""

    mask: np.ndarray  # HxW bool
    colour: np.ndarray  # HxW bool: the colour model's own answer, before GrabCut
    shadow: np.ndarray  # HxW bool: pixels taken for a cast shadow
    components: int  # separate objects kept


def find_foreground(
    rgb: np.ndarray,
    lab: np.ndarray,
    model: BackgroundModel,
    diff: Difference,
    border: np.ndarray,
    working_side: int,
) -> ForegroundMask:
    """The product's mask in a working-resolution photo."""
    candidates = diff.distance > model.threshold
    if model.smooth:  # a surface that predicts the background is sharper than GrabCut
        smooth = _smooth_pixels(lab, model.noise)
        shadow = _light_changes(diff, candidates, smooth)
        colour = candidates & ~shadow
        mask = colour
    else:  # on a texture, light changes are everywhere: GrabCut's colour models decide
        shadow = np.zeros_like(candidates)
        colour = candidates
        mask = _grabcut_at(working_side, rgb, colour, shadow, diff.distance, model.threshold)
    mask, components = _drop_specks(mask)
    mask = _fill_holes(mask, diff.distance, model.threshold)
    return ForegroundMask(mask, colour, shadow, components)


def _smooth_pixels(lab: np.ndarray, noise: float) -> np.ndarray:
    """Pixels away from any sharp edge: lightness barely differs from its blurred self."""
    light = np.ascontiguousarray(lab[..., 0])
    roughness = np.abs(light - cv2.GaussianBlur(light, (0, 0), _SOFT_SIGMA))
    return roughness < max(2.5, 2.0 * noise)


def _light_changes(diff: Difference, candidates: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """Candidates that are the background under other light: shadows, hot spots, and seams
    running into the frame (a plank gap, the fold of a backdrop)."""
    light = diff.light_only & candidates
    outside = _reaching_the_frame(~candidates) & smooth
    shadow = _soft_shadows(light & diff.darker, candidates, smooth, outside)
    # A white product on grey is lighter too, but its outline is rough: no allowance for it.
    spots = _ringed_by(light & ~diff.darker, outside, np.zeros_like(light))
    return shadow | spots | _reaching_the_frame(light)


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
    shadow = _grow(pieces & smooth, outside, pieces & ~smooth) & candidates
    return shadow | _grow(pieces & ~shadow, shadow, np.zeros_like(shadow))


def _reaching_the_frame(mask: np.ndarray) -> np.ndarray:
    """The parts of `mask` connected to the edge of the frame."""
    _count, labels = cv2.connectedComponents(mask.astype(np.uint8), 4)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touching = np.unique(edge[edge > 0])
    return np.isin(labels, touching)


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
    count, labels = cv2.connectedComponents(pieces.astype(np.uint8), 8)
    if count <= 1:
        return np.zeros_like(pieces)
    around = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    ring = (around > 0) & (labels == 0)
    index = around[ring]
    total = np.bincount(index, minlength=count)
    counted = total - np.bincount(index, weights=neutral[ring], minlength=count)
    inside = np.bincount(index, weights=known[ring], minlength=count)
    ringed = (inside > share * np.maximum(counted, 1)) & (counted >= total / 3)
    ringed[0] = False
    return ringed[labels]


def _grabcut_at(
    side: int,
    rgb: np.ndarray,
    rough: np.ndarray,
    shadow: np.ndarray,
    distance: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """GrabCut at a smaller working side (its cost grows fast with pixels), brought back."""
    h, w = rough.shape
    scale = min(1.0, side / max(h, w))
    if scale == 1.0 or not rough.any():
        return _grabcut(rgb, rough, shadow, distance, threshold)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))

    def shrink(m: np.ndarray) -> np.ndarray:
        return cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA)

    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    mask = _grabcut(small, shrink(rough) >= 0.5, shrink(shadow) >= 0.5, shrink(distance), threshold)
    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def _grabcut(
    rgb: np.ndarray, rough: np.ndarray, shadow: np.ndarray, distance: np.ndarray, threshold: float
) -> np.ndarray:
    if not rough.any():
        return rough
    mask = np.where(rough, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[rough & (distance > 3 * threshold)] = cv2.GC_FGD
    border = border_mask(rough.shape)
    mask[(border | shadow) & ~rough] = cv2.GC_BGD
    # GrabCut's cost grows with pixels: solve only around the rough product, the rest is
    # background by the colour model already.
    top, bottom, left, right = _padded_box(rough, 0.08)
    crop = np.ascontiguousarray(mask[top:bottom, left:right])
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(
            np.ascontiguousarray(rgb[top:bottom, left:right]),
            crop,
            None,
            bgd,
            fgd,
            3,
            cv2.GC_INIT_WITH_MASK,
        )
    except cv2.error:  # degenerate colour models (e.g. a flat image): keep the rough mask
        return rough
    result = np.zeros(rough.shape, bool)
    result[top:bottom, left:right] = (crop == cv2.GC_FGD) | (crop == cv2.GC_PR_FGD)
    return result


def _padded_box(mask: np.ndarray, pad: float) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    dy, dx = round(h * pad), round(w * pad)
    return (
        max(0, ys.min() - dy),
        min(h, ys.max() + 1 + dy),
        max(0, xs.min() - dx),
        min(w, xs.max() + 1 + dx),
    )


def _drop_specks(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Only components of a real size stay; returns the mask and how many there are."""
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if len(areas) == 0:
        return np.zeros(mask.shape, bool), 0
    keep = np.flatnonzero(areas >= _MIN_COMPONENT * areas.max()) + 1
    return np.isin(labels, keep), len(keep)


def _fill_holes(mask: np.ndarray, distance: np.ndarray, threshold: float) -> np.ndarray:
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
