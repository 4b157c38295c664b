"""GrabCut on a textured background, where no smooth surface predicts the background: its
colour models and edge costs settle the pixels the border's colour clusters cannot."""

from __future__ import annotations

import cv2
import numpy as np

from product_images.imaging.background_model import border_mask

__all__ = ["grabcut_at"]


def grabcut_at(
    side: int,
    rgb: np.ndarray,
    colour: np.ndarray,
    shadow: np.ndarray,
    distance: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """GrabCut at a smaller working side (its cost grows fast with pixels), brought back."""
    h, w = colour.shape
    scale = min(1.0, side / max(h, w))
    if scale == 1.0 or not colour.any():
        return _grabcut(rgb, colour, shadow, distance, threshold)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))

    def shrink(m: np.ndarray) -> np.ndarray:
        return cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA)

    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    mask = _grabcut(
        small, shrink(colour) >= 0.5, shrink(shadow) >= 0.5, shrink(distance), threshold
    )
    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def _grabcut(
    rgb: np.ndarray, colour: np.ndarray, shadow: np.ndarray, distance: np.ndarray, threshold: float
) -> np.ndarray:
    if not colour.any():
        return colour
    mask = np.where(colour, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[colour & (distance > 3 * threshold)] = cv2.GC_FGD
    border = border_mask(colour.shape)
    mask[(border | shadow) & ~colour] = cv2.GC_BGD
    # GrabCut's cost grows with pixels: solve only around the candidates, the rest is
    # background by the colour model already.
    top, bottom, left, right = _padded_box(colour, 0.08)
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
    except cv2.error:  # degenerate colour models (e.g. a flat image): keep the candidates
        return colour
    result = np.zeros(colour.shape, bool)
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
