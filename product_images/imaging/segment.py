"""Local cut-out: a colour model of the background learnt from the border, GrabCut at a
working resolution, then the mask brought back to full size with soft edges.

Confidence is built from the things that make this approach fail (a busy border, a product
touching the frame, several objects, a weak edge) and each failure is named, so the
manifest can say *why* a product needs review.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

__all__ = ["Cutout", "cutout_from_alpha", "segment_product"]

_BORDER = 0.03  # share of each side treated as known background
_MIN_COMPONENT = 0.04  # components smaller than this share of the largest are noise
_SHADOW_WEIGHT = 0.15  # how much shadow-like darkening counts as different
_SHADOW_DEPTH = -110.0  # OpenCV Lab L (0-255): darker than this is an object, not a shadow
_SHADOW_CHROMA = 7.0  # shadows barely change a and b


@dataclass(frozen=True)
class Cutout:
    """The product separated from its background, on the source's pixel grid."""

    alpha: np.ndarray  # uint8 HxW, 255 = product
    box: tuple[int, int, int, int]  # left, top, right, bottom of the product
    confidence: float
    reasons: tuple[str, ...] = field(default_factory=tuple)
    background_rgb: tuple[int, int, int] = (255, 255, 255)


def cutout_from_alpha(alpha: np.ndarray) -> Cutout:
    """A source that is already a transparent cut-out is trusted as it is, except for a soft
    drop shadow baked into its alpha: it is not the product, and it would spoil the framing
    and the pure white background, so only alpha near the solid object is kept."""
    core = (alpha >= 128).astype(np.uint8)
    near = cv2.dilate(core, np.ones((5, 5), np.uint8)).astype(bool)
    kept = np.where(near, alpha, 0).astype(np.uint8)
    return Cutout(alpha=kept, box=_box(kept), confidence=0.99)


def segment_product(image: Image.Image, working_side: int = 400) -> Cutout:
    """Separate the product in an RGB photo from its background."""
    rgb = np.asarray(image.convert("RGB"))
    # k-means and GrabCut draw from OpenCV's per-thread RNG: seed it so the same photo always
    # gives the same cut-out (cache keys and fidelity decisions depend on it).
    cv2.setRNGSeed(20261124)
    small = _downscale(rgb, working_side)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = _border_mask(small.shape[:2])
    # In a grey photo a darker grey object looks exactly like a shadow: no shadow discount.
    shadows = float(np.abs(lab[..., 1:] - 128).mean()) > 1.5
    centres, spread = _background_model(lab[border], shadows)
    distance = _distance_to_background(lab, centres, shadows)
    threshold = max(12.0, 3.0 * spread)
    rough = distance > threshold
    mask = _grabcut(small, border, rough, distance, threshold)
    mask, components = _clean(mask)
    confidence, reasons = _confidence(mask, rough, border, spread, components, distance, threshold)
    stray_score, stray_reason = _check_stray_edges(small, mask, border)
    confidence, reasons = (
        round(confidence * stray_score, 3),
        reasons + ([stray_reason] if stray_reason else []),
    )
    alpha = _full_size_alpha(mask, rgb.shape[:2])
    background = tuple(int(c) for c in np.median(small[border], axis=0))
    return Cutout(alpha, _box(alpha), confidence, tuple(reasons), background)  # type: ignore[arg-type]


def _downscale(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _border_mask(shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    band = max(2, round(min(h, w) * _BORDER))
    border = np.zeros((h, w), bool)
    border[:band], border[-band:], border[:, :band], border[:, -band:] = True, True, True, True
    return border


def _background_model(samples: np.ndarray, shadows: bool = True) -> tuple[np.ndarray, float]:
    """Up to three colour clusters of the border and how tightly pixels sit around them."""
    k = min(3, len(samples))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centres = cv2.kmeans(samples, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    counts = np.bincount(labels.ravel(), minlength=k)
    centres = centres[counts >= 0.05 * len(samples)]  # ignore rare clusters: stray product pixels
    spread = float(np.median(np.min(_pairwise(samples, centres, shadows), axis=1)))
    return centres, spread


def _pairwise(points: np.ndarray, centres: np.ndarray, shadows: bool = True) -> np.ndarray:
    """Lab distances that discount shadows: a cast shadow is the background, darker but of
    the same hue. Moderate, colourless darkening counts little; deep darkening (a black
    product) and any change of colour count in full."""
    delta = points[:, None, :] - centres[None, :, :]
    light, chroma = delta[..., 0], np.hypot(delta[..., 1], delta[..., 2])
    shadow_like = shadows & (light < 0) & (light > _SHADOW_DEPTH) & (chroma < _SHADOW_CHROMA)
    weight = np.where(shadow_like, _SHADOW_WEIGHT, np.where(light < 0, 0.5, 1.0))
    return np.sqrt((light * weight) ** 2 + chroma**2)


def _distance_to_background(
    lab: np.ndarray, centres: np.ndarray, shadows: bool = True
) -> np.ndarray:
    flat = lab.reshape(-1, 3)
    return np.min(_pairwise(flat, centres, shadows), axis=1).reshape(lab.shape[:2])


def _grabcut(
    rgb: np.ndarray, border: np.ndarray, rough: np.ndarray, distance: np.ndarray, threshold: float
) -> np.ndarray:
    if not rough.any():
        return rough
    mask = np.where(rough, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[(distance > 3 * threshold) & ~border] = cv2.GC_FGD
    mask[border & ~rough] = cv2.GC_BGD
    # GrabCut's cost grows with pixels: solve only around the rough product, the rest is
    # background by the colour model already.
    top, bottom, left, right = _padded_box(rough, 0.08)
    crop = np.ascontiguousarray(mask[top:bottom, left:right])
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(
            rgb[top:bottom, left:right].copy(), crop, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK
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


def _clean(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop specks, fill small holes; returns the mask and its number of real components."""
    m = mask.astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if len(areas) == 0:
        return np.zeros(mask.shape, bool), 0
    keep = np.flatnonzero(areas >= _MIN_COMPONENT * areas.max()) + 1
    kept = np.isin(labels, keep)
    return _fill_small_holes(kept), len(keep)


def _fill_small_holes(mask: np.ndarray) -> np.ndarray:
    inverse = (~mask).astype(np.uint8)
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    limit = 0.002 * mask.size
    small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < limit) + 1
    return mask | np.isin(labels, small)


def _confidence(
    mask: np.ndarray,
    rough: np.ndarray,
    border: np.ndarray,
    spread: float,
    components: int,
    distance: np.ndarray,
    threshold: float,
) -> tuple[float, list[str]]:
    checks = [
        _check_area(mask),
        _check_border_touch(mask, border),
        _check_clutter(spread),
        _check_components(components),
        _check_agreement(mask, rough),
        _check_edge_contrast(mask, distance, threshold),
    ]
    score = float(np.prod([s for s, _ in checks]))
    return round(score, 3), [reason for s, reason in checks if reason]


def _check_area(mask: np.ndarray) -> tuple[float, str]:
    share = mask.mean()
    if share < 0.005:
        return 0.0, "no product found"
    if share > 0.92:
        return 0.3, f"product fills {share:.0%} of the photo; background barely visible"
    return 1.0, ""


def _check_border_touch(mask: np.ndarray, border: np.ndarray) -> tuple[float, str]:
    edge = np.zeros_like(border)
    edge[0], edge[-1], edge[:, 0], edge[:, -1] = True, True, True, True
    touching = mask[edge].mean()
    if touching > 0.25:
        return 0.35, f"product touches the frame along {touching:.0%} of the edge (cropped?)"
    if touching > 0.02:
        return 0.75, f"product touches the frame along {touching:.0%} of the edge"
    return 1.0, ""


def _check_clutter(spread: float) -> tuple[float, str]:
    # Thresholds from the dev photos: studio backgrounds stay under 5, cluttered ones over 6.
    if spread > 12:
        return 0.3, f"cluttered background (border colour spread {spread:.1f})"
    if spread > 6:
        return 0.5, f"textured background (border colour spread {spread:.1f})"
    if spread > 4.5:
        return 0.85, ""
    return 1.0, ""


def _check_components(components: int) -> tuple[float, str]:
    if components > 1:
        return 0.5, f"{components} separate objects found"
    return 1.0, ""


def _check_agreement(mask: np.ndarray, rough: np.ndarray) -> tuple[float, str]:
    union = (mask | rough).sum()
    iou = (mask & rough).sum() / union if union else 0.0
    if iou < 0.6:
        return 0.6, f"colour model and GrabCut disagree (IoU {iou:.2f})"
    return 1.0, ""


def _check_edge_contrast(
    mask: np.ndarray, distance: np.ndarray, threshold: float
) -> tuple[float, str]:
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~mask
    if not ring.any():
        return 1.0, ""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    edge = mask & ~inner
    contrast = float(np.median(distance[edge])) if edge.any() else 0.0
    if contrast < threshold:
        return 0.7, "weak contrast between product edge and background"
    return 1.0, ""


def _check_stray_edges(rgb: np.ndarray, mask: np.ndarray, border: np.ndarray) -> tuple[float, str]:
    """Strong edges away from the cut-out mean a missed part (white-on-white) or a busy scene.

    On the dev photos clean cut-outs leave under 25% of the edges outside the mask.
    """
    edges = cv2.Canny(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 60, 150) > 0
    edges &= ~border
    near = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    stray = (edges & ~near).sum() / max(1, edges.sum())
    if stray > 0.3:
        return (
            0.5,
            f"{stray:.0%} of strong edges lie outside the cut-out (missed part or busy background)",
        )
    return 1.0, ""


def _full_size_alpha(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Upsample the working mask with a soft, anti-aliased edge."""
    h, w = shape[:2]
    soft = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)
    alpha = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)
    scale = max(h, w) / max(mask.shape)
    if scale > 1.5:
        k = int(scale) | 1
        alpha = cv2.GaussianBlur(alpha, (k, k), 0)
        alpha = np.clip((alpha - 0.5) * 2.0 + 0.5, 0, 1)  # keep the edge crisp after blurring
    out = (alpha * 255).round().astype(np.uint8)
    out[out < 8] = 0  # faint noise would spoil a pure white background
    return out


def _box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha > 24)
    if len(xs) == 0:
        h, w = alpha.shape
        return 0, 0, w, h
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
