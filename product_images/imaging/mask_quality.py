"""How close a cut-out is to a reference mask: the measures of bench/eval_masks.py and of the
golden cut-out tests, in one place so both judge masks the same way."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["boundary", "boundary_f", "edge_alpha_error", "iou"]


def iou(ours: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.count_nonzero(ours | truth)
    return float(np.count_nonzero(ours & truth) / union) if union else 1.0


def boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's own pixels that touch the outside (8-neighbourhood)."""
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8), borderValue=1)).astype(bool)


def _near(mask: np.ndarray, tolerance: int) -> np.ndarray:
    kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def boundary_f(ours: np.ndarray, truth: np.ndarray, tolerance: int = 2) -> float:
    """Boundary F-measure: the share of each outline within `tolerance` px of the other's,
    combined as a harmonic mean (Martin et al.'s BSDS measure with a square tolerance)."""
    b_ours, b_truth = boundary(ours), boundary(truth)
    if not b_ours.any() or not b_truth.any():
        return float(b_ours.any() == b_truth.any())
    precision = np.count_nonzero(b_ours & _near(b_truth, tolerance)) / np.count_nonzero(b_ours)
    recall = np.count_nonzero(b_truth & _near(b_ours, tolerance)) / np.count_nonzero(b_truth)
    return float(2 * precision * recall / max(1e-9, precision + recall))


def edge_alpha_error(alpha: np.ndarray, truth_alpha: np.ndarray, width: int = 5) -> float:
    """Mean absolute alpha error (0-1) within `width` px of the reference outline."""
    band = _near(boundary(truth_alpha >= 128), width)
    if not band.any():
        return 0.0
    diff = np.abs(alpha.astype(np.float32) - truth_alpha.astype(np.float32))
    return float(diff[band].mean() / 255)
