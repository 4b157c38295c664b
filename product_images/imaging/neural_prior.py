"""The neural map finds the product; the classical analysis finishes it.

U²-Net-style models see the photo at 320×320: they know *what* the product is on any
background, but their outline is soft and thin parts (cables, laces) fade out. The classical
analysis (background colour model, shadows) is crisp wherever the background is calm, and
knows a cast shadow from a part. So, at the analysis resolution:
- the product is the model's mask (probability ≥ 0.5), cleaned of specks;
- where the background is calm and both agree on the product, the outline is the classical
  one inside a band around the model's outline, and thin classical parts touching the product
  (a cable, a strap) are kept;
- what the classical analysis calls a cast shadow, and the model is not sure of, is left out;
- enclosed openings that show the calm background (a handle, a rope loop) stay open.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from product_images.imaging.foreground import drop_specks, fill_holes
from product_images.imaging.mask_quality import iou

__all__ = ["NeuralEvidence", "fuse_masks"]

_SURE = 0.5  # probability at which the model calls a pixel product
_BAND = 6  # analysis px each side of the model's outline where a calm background decides
_AGREE = 0.7  # IoU above which the classical outline is trusted near the model's
_SHADOW_UNSURE = 0.85  # a classical shadow pixel the model rates below this is shadow


@dataclass(frozen=True)
class NeuralEvidence:
    """The model's map and mask at the analysis resolution and how they compare."""

    probability: np.ndarray  # float32 HxW, 0-1
    mask: np.ndarray  # bool HxW: the model's own (cleaned) mask
    components: int  # separate objects in the model's mask
    agreement: float  # IoU of the model's mask and the classical one
    fused: np.ndarray  # bool HxW: the mask the cut-out uses


def fuse_masks(
    probability: np.ndarray,
    classical: np.ndarray,
    shadow: np.ndarray,
    distance: np.ndarray,
    threshold: float,
    calm: bool,
) -> NeuralEvidence:
    """The product mask from the model's map (resized to the analysis grid) and the classical
    analysis of the same photo (its mask, shadow and colour distance to the background)."""
    neural, components = drop_specks(probability >= _SURE)
    agreement = iou(neural, classical)
    fused = neural & ~(shadow & (probability < _SHADOW_UNSURE))
    if calm and agreement >= _AGREE:
        fused = _classical_outline(fused, classical)
        fused = fill_holes(fused, distance, threshold)
        fused = _open_loops(fused, ~classical & (distance < 0.5 * threshold))
    fused, _ = drop_specks(fused)
    return NeuralEvidence(probability, neural, components, agreement, fused)


def _classical_outline(neural: np.ndarray, classical: np.ndarray) -> np.ndarray:
    """Inside a band around the model's outline the classical mask decides; beyond the band
    the model does, except for classical parts that reach out of it (thin parts)."""
    core = _grown(neural, -_BAND)
    near = _grown(neural, _BAND)
    return core | (classical & near) | _touching(classical & ~near, near)


def _touching(parts: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The connected pieces of `parts` that touch `body`."""
    count, labels = cv2.connectedComponents(parts.astype(np.uint8), connectivity=8)
    if count <= 1:
        return parts
    rim = _grown(body, 1) & parts
    keep = np.unique(labels[rim])
    return np.isin(labels, keep[keep > 0])


def _open_loops(mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Openings the model filled (a rope loop) that the classical analysis plainly sees as
    background; only asked where both agree on the product, so a white part of a white
    product the classical mask lost is never opened."""
    background = cv2.morphologyEx(
        (background & mask).astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)
    ).astype(bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(background.astype(np.uint8), 4)
    big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= 0.001 * mask.size) + 1
    return mask & ~np.isin(labels, big) if count > 1 else mask


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """The mask dilated (radius > 0) or eroded (radius < 0) by a disc."""
    size = 2 * abs(radius) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    op = cv2.dilate if radius > 0 else cv2.erode
    return op(mask.astype(np.uint8), disc).astype(bool)
