"""How far to trust a neural cut-out: a score in 0-1 and the names of what went wrong.

Two independent witnesses look at every photo: the neural model and the classical colour
analysis. On a calm background, where the colour analysis is reliable, their agreement is the
strongest signal, and the colour analysis's own look just outside the outline (a part of a
different shade there, a "shadow" with sharp detail) catches the white sole both can miss. On
a busy background only the model vouches, so its own certainty decides: a sure map turns from
0 to 1 within a few pixels of the outline. Each check returns a factor and a reason; the
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
# What the classical analysis says when a part of another shade lies just off its outline.
_LIGHTER_RIM = 0.05  # share of the rim lighter than the background that flags a lost part
_MISSED_PART = ("differs from the background", "has sharp detail")


@dataclass(frozen=True)
class ColourView:
    """What the classical colour analysis saw of the same photo."""

    mask: np.ndarray  # bool HxW: its own product mask
    lighter: np.ndarray  # bool HxW: plainly lighter than the background (never a shadow)
    border: np.ndarray  # bool HxW: the frame's band, background by assumption
    calm: bool  # the background is a smooth surface: the colour analysis is reliable
    reasons: tuple[str, ...]  # what its own checks said


@dataclass(frozen=True)
class Features:
    """What the checks read, kept apart so the evaluation can print and calibrate them."""

    agreement: float  # IoU of the cut-out's mask and the classical one
    unsure: float  # grey pixels (0.15 < p < 0.85) per outline pixel: the grey band's depth
    components: int  # separate objects in the cut-out
    touching: float  # share of the frame's edge the cut-out touches
    area: float  # share of the photo the cut-out covers
    calm: bool  # the background is a smooth surface (the classical analysis is reliable)
    missed_part: bool  # the classical analysis sees a part of another shade off its outline
    lighter_rim: float  # share of the band just outside the cut-out lighter than the background


def features(evidence: NeuralEvidence, colour: ColourView) -> Features:
    """The measurements the checks read."""
    p, mask = evidence.probability, evidence.fused
    outline = max(1, int(np.count_nonzero(boundary(evidence.mask))))
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return Features(
        agreement=iou(mask, colour.mask),
        unsure=np.count_nonzero((p > 0.15) & (p < 0.85)) / outline,
        components=evidence.components,
        touching=float(edge.mean()),
        area=float(mask.mean()),
        calm=colour.calm,
        missed_part=any(m in r for r in colour.reasons for m in _MISSED_PART),
        lighter_rim=_lighter_rim(mask, colour),
    )


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
    if not f.calm:
        return 1.0, ""
    if f.agreement < 0.6:
        return 0.5, f"the model and the colour analysis disagree (IoU {f.agreement:.2f})"
    if f.agreement < 0.8:
        return 0.7, f"the model and the colour analysis differ (IoU {f.agreement:.2f})"
    return 1.0, ""


def _check_missed_part(f: Features) -> Check:
    """Where both agree on a calm background, a part of another shade just off the outline
    is likely one both missed (a white sole on a light floor)."""
    if f.calm and f.agreement >= 0.8 and f.missed_part:
        return 0.7, "something of another shade lies just outside the outline (a missed part?)"
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
    _check_missed_part,
    _check_lighter_rim,
    _check_busy_background,
)
