"""The neural map finds the product; the classical analysis finishes it.

U²-Net-style models see the photo at 320×320: they know *what* the product is on any
background, but their outline is soft, thin parts (cables, laces) fade out, and of two
products they may see only the more salient. The classical analysis (background colour
model, shadows) is crisp wherever the background is calm and knows a cast shadow from a
part. So, at the analysis resolution:
- the product is the model's mask (probability ≥ 0.5), cleaned of specks;
- what the classical analysis calls a cast shadow, and the model is not sure of, is left out;
- on a calm background, objects the model missed that the colour analysis plainly sees (the
  second shoe of a pair) are added, and so are thin classical parts touching the product (a
  cable, a strap) that the model's coarse map lost;
- where both agree, the outline is snapped to the classical one inside a narrow band;
- enclosed openings that show the calm background (a handle, a rope loop) stay open.
The full-resolution edge is then refined from the photo's colours (edges.refine_alpha).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from product_images.imaging.foreground import drop_specks, fill_holes
from product_images.imaging.labels import labelled
from product_images.imaging.mask_quality import iou

__all__ = ["NeuralEvidence", "fuse_masks"]

_SURE = 0.5  # probability at which the model calls a pixel product
_BAND = 3  # analysis px each side of the model's outline where a calm background decides
_AGREE = 0.85  # IoU above which the classical outline is trusted near the model's
_SHADOW_UNSURE = 0.85  # a classical shadow pixel the model rates below this is shadow
_MISSED = 0.15  # a classical object this share of the product's size is not a speck
_STRONG = 3.0  # colour distance, in background thresholds, of a plainly different object
_LOOP_UNSURE = 0.8  # mean probability under which a background-coloured opening is opened
_THIN = 4  # analysis px: classical parts no wider than twice this are thin parts


@dataclass(frozen=True)
class NeuralEvidence:
    """The model's map and mask at the analysis resolution and how they compare."""

    probability: np.ndarray  # float32 HxW, 0-1
    mask: np.ndarray  # bool HxW: the model's own (cleaned) mask
    components: int  # separate objects in the fused mask
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
    neural, _ = drop_specks(probability >= _SURE)
    agreement = iou(neural, classical)
    fused = neural & ~(shadow & (probability < _SHADOW_UNSURE))
    if calm:
        fused = _calm_finish(fused, classical, distance, threshold, agreement)
        fused = _open_loops(fused, ~classical & (distance < 0.5 * threshold), probability)
    fused, components = drop_specks(fused)
    return NeuralEvidence(probability, neural, components, agreement, fused)


def _calm_finish(
    mask: np.ndarray, classical: np.ndarray, distance: np.ndarray, threshold: float, agree: float
) -> np.ndarray:
    """On a calm background the colour analysis is trusted for what the model misses."""
    missed = _missed_objects(classical, mask, distance > _STRONG * threshold)
    mask = mask | missed | _thin_parts(classical & ~mask, mask)
    if agree >= _AGREE:
        near = _grown(mask, _BAND) & ~_grown(mask, -_BAND)
        mask = (mask & ~near) | (classical & near)
    # Only pinholes are filled: a larger hole in the model's mask is an opening it saw.
    return fill_holes(mask, np.zeros_like(distance), threshold)


def _missed_objects(classical: np.ndarray, mask: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Classical objects of a real size, mostly of a plainly different colour, that touch
    neither the model's mask nor the frame (a vignette's dark corner is not a product, nor
    is a faint patch of uneven light)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(classical.astype(np.uint8), 8)
    if count <= 1 or not mask.any():
        return np.zeros_like(mask)
    touched = np.unique(np.concatenate([labels[mask], labels[0], labels[-1], labels[:, 0],
                                        labels[:, -1]]))  # fmt: skip
    area = np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    big = area >= _MISSED * np.count_nonzero(mask)
    plain = np.bincount(labels.ravel(), strong.ravel(), count) / area >= 0.5
    keep = np.flatnonzero(big & plain)
    keep = keep[(keep > 0) & ~np.isin(keep, touched)]
    return labelled(labels, keep)


def _thin_parts(parts: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The thin pieces of `parts` (cables, straps, laces) that touch `body`; wide pieces
    are more likely a shadow or background the colour analysis got wrong."""
    size = 2 * _THIN + 1
    wide = cv2.morphologyEx(
        parts.astype(np.uint8), cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)),
    ).astype(bool)  # fmt: skip
    thin = parts & ~_grown(wide, 2)
    count, labels = cv2.connectedComponents(thin.astype(np.uint8), connectivity=8)
    if count <= 1:
        return thin
    keep = np.unique(labels[_grown(body, 1) & thin])
    return labelled(labels, keep[keep > 0])


def _open_loops(mask: np.ndarray, background: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Openings the model half-filled (a rope loop) that the classical analysis plainly sees
    as background. Where the model is sure, the region is the product's own (the white inside
    of a mug), whatever its colour."""
    background = cv2.morphologyEx(
        (background & mask).astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)
    ).astype(bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(background.astype(np.uint8), 4)
    if count <= 1:
        return mask
    sureness = np.bincount(labels.ravel(), probability.ravel(), count) / np.maximum(
        stats[:, cv2.CC_STAT_AREA], 1
    )
    big = stats[:, cv2.CC_STAT_AREA] >= 0.001 * mask.size
    opened = np.flatnonzero(big & (sureness < _LOOP_UNSURE))
    return mask & ~labelled(labels, opened[opened > 0])


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """The mask dilated (radius > 0) or eroded (radius < 0) by a disc."""
    size = 2 * abs(radius) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    op = cv2.dilate if radius > 0 else cv2.erode
    return op(mask.astype(np.uint8), disc).astype(bool)
