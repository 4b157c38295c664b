"""How far to trust a local cut-out: a score in 0-1 and the names of what went wrong.

Each check looks for one way the border-colour approach fails and returns a factor and a
reason; the confidence is their product, so any single failure can send a product to review.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from product_images.imaging.background_model import BackgroundModel, Difference
from product_images.imaging.foreground import ForegroundMask

__all__ = ["score_cutout"]

Check = tuple[float, str]

_NEAR_OUTLINE = 0.03  # share of the band 3-10 px outside the cut-out that may differ
_SHADOW_WITH_EDGES = 0.003  # share of that band that may be shadow with sharp detail
_FADED = 0.15  # share of a kept light-only part's ring that may fade without an edge


@dataclass(frozen=True)
class _Evidence:
    rgb: np.ndarray
    model: BackgroundModel
    diff: Difference
    found: ForegroundMask
    border: np.ndarray


def score_cutout(
    rgb: np.ndarray,
    model: BackgroundModel,
    diff: Difference,
    found: ForegroundMask,
    border: np.ndarray,
) -> tuple[float, tuple[str, ...]]:
    """The confidence of a working-resolution mask and the reasons it is low."""
    evidence = _Evidence(rgb, model, diff, found, border)
    checks = [check(evidence) for check in _CHECKS]
    score = float(np.prod([factor for factor, _ in checks]))
    return round(score, 3), tuple(reason for _, reason in checks if reason)


def _check_area(e: _Evidence) -> Check:
    share = e.found.mask.mean()
    if share < 0.005:
        return 0.0, "no product found"
    if share > 0.92:
        return 0.3, f"product fills {share:.0%} of the photo; background barely visible"
    return 1.0, ""


def _check_border_touch(e: _Evidence) -> Check:
    mask = e.found.mask
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    touching = edge.mean()
    if touching > 0.25:
        return 0.35, f"product touches the frame along {touching:.0%} of the edge (cropped?)"
    if touching > 0.02:
        return 0.75, f"product touches the frame along {touching:.0%} of the edge"
    return 1.0, ""


def _check_clutter(e: _Evidence) -> Check:
    noise = e.model.noise
    if e.model.smooth:
        return 1.0, ""
    if noise > 24:
        return 0.3, f"cluttered background (border colour spread {noise:.1f})"
    if noise > 6:
        return 0.5, f"textured background (border colour spread {noise:.1f})"
    # Calm but uneven (no smooth surface fits, colour clusters do): shadows cannot be told apart.
    return 0.7, f"uneven background (border colour spread {noise:.1f})"


def _check_components(e: _Evidence) -> Check:
    if e.found.components > 1:
        return 0.5, f"{e.found.components} separate objects found"
    return 1.0, ""


def _check_agreement(e: _Evidence) -> Check:
    mask, colour = e.found.mask, e.found.colour
    union = (mask | colour).sum()
    iou = (mask & colour).sum() / union if union else 0.0
    if iou < 0.6:
        return 0.6, f"colour model and GrabCut disagree (IoU {iou:.2f})"
    return 1.0, ""


def _ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Pixels more than `inner` and at most `outer` px outside the mask."""

    def grown(radius: int) -> np.ndarray:
        if radius == 0:
            return mask
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)

    return grown(outer) & ~grown(inner)


def _check_near_outline(e: _Evidence) -> Check:
    """Just outside a good cut-out lies background or its shadow; anything else there is
    likely a part the cut-out missed (a white sole on a light floor)."""
    ring = _ring(e.found.mask, 3, 10) & ~e.border
    if not ring.any():
        return 1.0, ""
    differs = (e.diff.distance > e.model.threshold) & ~e.found.shadow
    # A missed part is a patch; JPEG ringing along an edge is specks: open them away.
    differs = cv2.morphologyEx(differs.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    share = float(differs.astype(bool)[ring].mean())
    if share > _NEAR_OUTLINE:
        return 0.5, f"{share:.0%} of the band around the cut-out differs from the background"
    return 1.0, ""


def _check_shadow_with_edges(e: _Evidence) -> Check:
    """A cast shadow is smooth; sharp detail inside what was taken for one, just off the
    cut-out, is more likely a part of the product (a white sole on a light floor)."""
    ring = _ring(e.found.mask, 3, 10) & ~e.border
    if e.found.edges is None or not ring.any():
        return 1.0, ""
    share = float((e.found.shadow & e.found.edges)[ring].mean())
    if share > _SHADOW_WITH_EDGES:
        return 0.5, "what was taken for a shadow next to the product has sharp detail"
    return 1.0, ""


def _check_faded_part(e: _Evidence) -> Check:
    """A kept part that fades into the background without an edge, as a shadow does, may be
    one (a contact shadow joined to a white product where their shades meet)."""
    if e.found.faded > _FADED:
        return 0.6, f"part of the cut-out fades into the background ({e.found.faded:.0%})"
    return 1.0, ""


def _check_edge_contrast(e: _Evidence) -> Check:
    mask = e.found.mask.astype(np.uint8)
    edge = mask.astype(bool) & ~cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    if not edge.any():
        return 1.0, ""
    contrast = float(np.median(e.diff.distance[edge]))
    if contrast < e.model.threshold:
        return 0.7, "weak contrast between product edge and background"
    return 1.0, ""


def _check_stray_edges(e: _Evidence) -> Check:
    """Strong edges away from the cut-out mean a missed part (white-on-white) or a busy scene.

    On the dev photos clean cut-outs leave under 25% of the edges outside the mask.
    """
    edges = cv2.Canny(cv2.cvtColor(e.rgb, cv2.COLOR_RGB2GRAY), 60, 150) > 0
    edges &= ~e.border
    kernel = np.ones((7, 7), np.uint8)
    near = cv2.dilate((e.found.mask | e.found.shadow).astype(np.uint8), kernel).astype(bool)
    stray = (edges & ~near).sum() / max(1, edges.sum())
    if stray > 0.3:
        return (
            0.5,
            f"{stray:.0%} of strong edges lie outside the cut-out (missed part or busy background)",
        )
    return 1.0, ""


_CHECKS = (
    _check_area,
    _check_border_touch,
    _check_clutter,
    _check_components,
    _check_agreement,
    _check_edge_contrast,
    _check_near_outline,
    _check_shadow_with_edges,
    _check_faded_part,
    _check_stray_edges,
)
