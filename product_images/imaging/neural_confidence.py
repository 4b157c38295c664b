"""How far to trust a neural cut-out: a score in 0-1 and the names of what went wrong.

Two independent witnesses look at every photo: the neural model and the classical analysis.
Where they agree on a calm background the cut-out is almost always right; where they differ,
the model's own map says how sure it is (a clean map is near 0 or 1 everywhere but a thin
outline; an unsure one has wide grey areas or many fragments). Each check returns a factor and
a reason, and the confidence is their product, as for the classical cut-out. The thresholds
were calibrated with bench/eval_masks.py (see bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from product_images.imaging.foreground import ForegroundMask
from product_images.imaging.mask_quality import boundary
from product_images.imaging.neural_prior import NeuralEvidence

__all__ = ["Features", "features", "score_neural"]

Check = tuple[float, str]

_UNSURE = 8.0  # analysis px of grey map per outline px above which the model is unsure
_UNSURE_WIDE = 14.0


@dataclass(frozen=True)
class Features:
    """What the checks read, kept apart so the evaluation can print and calibrate them."""

    agreement: float  # IoU of the model's mask and the classical one
    unsure: float  # grey pixels (0.15 < p < 0.85) per outline pixel: the grey band's width
    components: int  # separate objects in the model's mask
    touching: float  # share of the frame's edge the cut-out touches
    area: float  # share of the photo the cut-out covers
    calm: bool  # the background is a smooth surface (the classical analysis is reliable)
    classical: float  # the classical analysis's own confidence


def features(
    evidence: NeuralEvidence, found: ForegroundMask, calm: bool, classical: float
) -> Features:
    """The measurements the checks read."""
    p, mask = evidence.probability, evidence.fused
    outline = max(1, int(np.count_nonzero(boundary(evidence.mask))))
    unsure = np.count_nonzero((p > 0.15) & (p < 0.85)) / outline
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return Features(
        agreement=evidence.agreement,
        unsure=float(unsure),
        components=evidence.components,
        touching=float(edge.mean()),
        area=float(mask.mean()),
        calm=calm,
        classical=classical,
    )


def score_neural(
    evidence: NeuralEvidence,
    found: ForegroundMask,
    calm: bool,
    classical: tuple[float, tuple[str, ...]],
) -> tuple[float, tuple[str, ...]]:
    """The confidence of a neural cut-out and the reasons it is low."""
    seen = features(evidence, found, calm, classical[0])
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
    if f.components > 1:
        return 0.5, f"{f.components} separate objects found"
    return 1.0, ""


def _check_certainty(f: Features) -> Check:
    """A sure map turns from 0 to 1 within a few pixels of the outline."""
    if f.unsure > _UNSURE_WIDE:
        return 0.5, f"the model is unsure of much of the photo (grey {f.unsure:.0f} px deep)"
    if f.unsure > _UNSURE:
        return 0.75, f"the model is unsure along the outline (grey {f.unsure:.0f} px deep)"
    return 1.0, ""


def _check_agreement(f: Features) -> Check:
    """On a calm background the classical analysis is a reliable second opinion."""
    if not f.calm:
        return 1.0, ""
    if f.agreement < 0.6:
        return 0.5, f"the model and the colour analysis disagree (IoU {f.agreement:.2f})"
    if f.agreement < 0.85:
        return 0.75, f"the model and the colour analysis differ (IoU {f.agreement:.2f})"
    return 1.0, ""


def _check_busy_background(f: Features) -> Check:
    """On a busy background only the model vouches for the outline."""
    if f.calm:
        return 1.0, ""
    return 0.85, "busy background: only the model vouches for the outline"


_CHECKS = (
    _check_area,
    _check_frame,
    _check_components,
    _check_certainty,
    _check_agreement,
    _check_busy_background,
)
