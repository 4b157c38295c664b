"""How far to trust a neural cut-out: a score in 0-1 and the names of what went wrong.

Two independent witnesses look at every photo: the neural model and the classical colour
analysis. On a calm background, where the colour analysis is reliable, what it plainly sees
beyond the cut-out is a part the model may have missed, and a patch lighter than the
background just outside the outline (a shadow is darker) is a part both may have missed (a
white sole on a light floor). What the colour analysis misses is not counted against the
model: it is what a white product on white looks like to it. On a busy background only the
model vouches, so its own certainty decides: a sure map turns from 0 to 1 within a few pixels
of the outline. Each check returns a factor and a reason; the
confidence is their product. The thresholds were calibrated with bench/eval_masks.py (see
bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from product_images.imaging.mask_quality import boundary, iou
from product_images.imaging.neural_prior import NeuralEvidence

__all__ = ["ColourView", "Features", "features", "score_neural"]

Check = tuple[float, str]

_UNSURE = 8.0  # grey map px per outline px above which the model is unsure
_UNSURE_WIDE = 14.0
_EXTRA = 0.05  # share of the cut-out's size the colour analysis may see beyond it
_LIGHTER_RIM = 0.02  # share of the rim lighter than the background that flags a lost part


@dataclass(frozen=True)
class ColourView:
    """What the classical colour analysis saw of the same photo."""

    mask: np.ndarray  # bool HxW: its own product mask
    lighter: np.ndarray  # bool HxW: plainly lighter than the background (never a shadow)
    strong: np.ndarray  # bool HxW: of a plainly different colour from the background
    border: np.ndarray  # bool HxW: the frame's band, background by assumption
    calm: bool  # the background is a smooth surface: the colour analysis is reliable


@dataclass(frozen=True)
class Features:
    """What the checks read, kept apart so the evaluation can print and calibrate them."""

    agreement: float  # IoU of the cut-out's mask and the classical one
    extra: float  # what the colour analysis plainly sees well outside the cut-out, per its area
    unsure: float  # grey pixels (0.15 < p < 0.85) per outline pixel: the grey band's depth
    components: int  # separate objects in the cut-out
    touching: float  # share of the frame's edge the cut-out touches
    area: float  # share of the photo the cut-out covers
    calm: bool  # the background is a smooth surface (the classical analysis is reliable)
    lighter_rim: float  # share of the band just outside the cut-out lighter than the background


def features(evidence: NeuralEvidence, colour: ColourView) -> Features:
    """The measurements the checks read."""
    p, mask = evidence.probability, evidence.fused
    outline = max(1, int(np.count_nonzero(boundary(evidence.mask))))
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return Features(
        agreement=iou(mask, colour.mask),
        extra=_extra(mask, colour),
        unsure=np.count_nonzero((p > 0.15) & (p < 0.85)) / outline,
        components=evidence.components,
        touching=float(edge.mean()),
        area=float(mask.mean()),
        calm=colour.calm,
        lighter_rim=_lighter_rim(mask, colour),
    )


def _extra(mask: np.ndarray, colour: ColourView) -> float:
    """Pixels the colour analysis calls product, of a plainly different colour, more than
    3 px outside the cut-out, per cut-out pixel: something the model may have missed. (The
    reverse, product the colour analysis misses, is what a white product on white looks like
    to it, and says nothing against the model.)"""
    near = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    outside = colour.mask & colour.strong & ~near
    return int(np.count_nonzero(outside)) / max(1, int(np.count_nonzero(mask)))


def _lighter_rim(mask: np.ndarray, colour: ColourView) -> float:
    """Share of the band 1-10 px outside the cut-out that is plainly lighter than the
    background: a shadow is darker, so a lighter patch there is most likely a part both
    witnesses lost (a white sole on a light floor). Specks (JPEG ringing) are opened away."""
    m = mask.astype(np.uint8)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21))
    ring = cv2.dilate(m, disc).astype(bool) & ~cv2.dilate(m, np.ones((3, 3), np.uint8)).astype(bool)
    ring &= ~colour.border
    if not ring.any():
        return 0.0
    lighter = cv2.morphologyEx(
        colour.lighter.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
    ).astype(bool)
    return float(lighter[ring].mean())


def score_neural(evidence: NeuralEvidence, colour: ColourView) -> tuple[float, tuple[str, ...]]:
    """The confidence of a neural cut-out and the reasons it is low."""
    seen = features(evidence, colour)
    checks = [check(seen) for check in _CHECKS]
    score = float(np.prod([factor for factor, _ in checks]))
    return round(score, 3), tuple(reason for _, reason in checks if reason)


def _check_area(f: Features) -> Check:
    if f.area < 0.002:
        return 0.0, "no product found"
    if f.area > 0.92:
        return 0.4, f"product fills {f.area:.0%} of the photo; background barely visible"
    return 1.0, ""


def _check_frame(f: Features) -> Check:
    if f.touching > 0.25:
        return 0.4, f"product touches the frame along {f.touching:.0%} of the edge (cropped?)"
    if f.touching > 0.02:
        return 0.75, f"product touches the frame along {f.touching:.0%} of the edge"
    return 1.0, ""


def _check_components(f: Features) -> Check:
    """Several objects are often one product (a pair of shoes): said, barely counted."""
    if f.components > 1:
        return 0.97, f"{f.components} separate objects found"
    return 1.0, ""


def _check_certainty(f: Features) -> Check:
    if f.unsure > _UNSURE_WIDE:
        return 0.4, f"the model is unsure of much of the photo (grey {f.unsure:.0f} px deep)"
    if f.unsure > _UNSURE:
        return 0.6, f"the model is unsure along the outline (grey {f.unsure:.0f} px deep)"
    return 1.0, ""


def _check_agreement(f: Features) -> Check:
    """On a calm background, what the colour analysis plainly sees beyond the cut-out is
    likely a part the model missed."""
    if f.calm and f.extra > _EXTRA:
        return 0.6, f"the colour analysis sees more than the model ({f.extra:.0%} of its size)"
    return 1.0, ""


def _check_lighter_rim(f: Features) -> Check:
    if f.calm and f.lighter_rim > _LIGHTER_RIM:
        return 0.6, f"a lighter part lies just outside the outline ({f.lighter_rim:.0%} of it)"
    return 1.0, ""


def _check_busy_background(f: Features) -> Check:
    if f.calm:
        return 1.0, ""
    return 0.85, "busy background: only the model vouches for the outline"


_CHECKS = (
    _check_area,
    _check_frame,
    _check_components,
    _check_certainty,
    _check_agreement,
    _check_lighter_rim,
    _check_busy_background,
)
