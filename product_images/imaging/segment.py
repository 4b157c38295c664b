"""Local cut-out: a background model learnt from the border, the product found at a working
resolution (shadows told apart, GrabCut, holes), then its edge refined at full resolution.

Confidence is built from the things that make this approach fail (a busy border, a product
touching the frame, several objects, a weak edge) and each failure is named, so the
manifest can say *why* a product needs review.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from product_images.imaging.background_model import (
    BackgroundModel,
    Difference,
    border_mask,
    difference,
    fit_background,
    refit_background,
)
from product_images.imaging.confidence import score_cutout
from product_images.imaging.edges import refine_alpha
from product_images.imaging.foreground import ForegroundMask, find_foreground
from product_images.imaging.neural_confidence import ColourView, score_neural
from product_images.imaging.neural_prior import NeuralEvidence, fuse_masks
from product_images.segmenters import NeuralSegmenter

__all__ = ["Cutout", "cutout_from_alpha", "segment_product"]


@dataclass(frozen=True)
class Cutout:
    """The product separated from its background, on the source's pixel grid."""

    alpha: np.ndarray  # uint8 HxW, 255 = product
    box: tuple[int, int, int, int]  # left, top, right, bottom of the product
    confidence: float
    reasons: tuple[str, ...] = field(default_factory=tuple)
    background_rgb: tuple[int, int, int] = (255, 255, 255)
    segmenter: str = "classical"  # what made the mask: classical, <model>+classical, source-alpha


def cutout_from_alpha(alpha: np.ndarray) -> Cutout:
    """A source that is already a transparent cut-out is trusted as it is, except for a soft
    drop shadow baked into its alpha: it is not the product, and it would spoil the framing
    and the pure white background, so only alpha near the solid object is kept."""
    core = (alpha >= 128).astype(np.uint8)
    near = cv2.dilate(core, np.ones((5, 5), np.uint8)).astype(bool)
    kept = np.where(near, alpha, 0).astype(np.uint8)
    return Cutout(alpha=kept, box=_box(kept), confidence=0.99, segmenter="source-alpha")


def segment_product(
    image: Image.Image, working_side: int = 400, neural: NeuralSegmenter | None = None
) -> Cutout:
    """Separate the product in an RGB photo from its background: with a neural model when one
    is given (its map finds the product, the classical analysis finishes the edge), else by
    the classical analysis alone."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    rgb = np.asarray(image)
    # k-means and GrabCut draw from OpenCV's per-thread RNG: seed it so the same photo always
    # gives the same cut-out (cache keys and fidelity decisions depend on it).
    cv2.setRNGSeed(20261124)
    detail = _downscale(image, 2 * working_side)
    if neural is None:
        seen = analyse(detail, working_side)
        confidence, reasons = score_cutout(seen.rgb, seen.model, seen.diff, seen.found, seen.border)
        mask, name = seen.found.mask, "classical"
    else:
        seen, evidence = _analyse_with_model(neural, detail, working_side)
        mask, name = evidence.fused, f"{neural.name}+classical"
        confidence, reasons = score_neural(evidence, _colour_view(seen))
    alpha = refine_alpha(rgb, seen.rgb, mask, seen.model.threshold)
    box = _box_near(alpha, mask)
    return Cutout(alpha, box, confidence, reasons, seen.model.rgb, name)


def _colour_view(seen: Analysis) -> ColourView:
    distance, threshold = seen.diff.distance, seen.model.threshold
    lighter = (distance > threshold) & ~seen.diff.darker
    strong = (distance > 3 * threshold) & ~seen.found.shadow
    return ColourView(seen.found.mask, lighter, strong, seen.border, seen.model.smooth)


def _analyse_with_model(
    neural: NeuralSegmenter, detail: np.ndarray, working_side: int
) -> tuple[Analysis, NeuralEvidence]:
    """The classical analysis and the model's map, fused. The model (onnxruntime, without the
    GIL) runs beside the analysis: a photo's cut-out takes the longer of the two, not their
    sum (the same CPU; shorter for one photo, e.g. `run` or an upload)."""
    with ThreadPoolExecutor(1) as model_thread:
        model_map = model_thread.submit(neural.probability, detail)
        seen = analyse(detail, working_side)
        return seen, _neural_evidence(model_map.result(), seen)


def _neural_evidence(model_map: np.ndarray, seen: Analysis) -> NeuralEvidence:
    """The model's map of the analysis copy, fused with the classical analysis."""
    h, w = seen.rgb.shape[:2]
    probability = cv2.resize(model_map, (w, h), interpolation=cv2.INTER_LINEAR)
    found = seen.found
    return fuse_masks(
        probability, found.mask, found.shadow, seen.diff.distance, seen.model.threshold,
        seen.model.smooth,
    )  # fmt: skip


@dataclass(frozen=True)
class Analysis:
    """Everything learnt about a photo at the analysis resolution."""

    rgb: np.ndarray
    lab: np.ndarray
    border: np.ndarray
    model: BackgroundModel
    diff: Difference
    found: ForegroundMask


def analyse(detail: np.ndarray, working_side: int) -> Analysis:
    """Background model, difference map and product mask of a photo downscaled to twice the
    working side.

    Colour evidence is read at twice the working side: a soft shadow must stay several pixels
    wide to be told from a sharp product edge. GrabCut runs at the working side.
    """
    lab = cv2.cvtColor(detail, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = border_mask(detail.shape)
    model = fit_background(lab, border)
    model = refit_background(lab, model, _around(difference(lab, model).distance > model.threshold))
    diff = difference(lab, model)
    found = find_foreground(detail, lab, model, diff, working_side)
    return Analysis(detail, lab, border, model, diff, found)


def _around(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def _downscale(image: Image.Image, side: int) -> np.ndarray:
    """The photo with its longer side at most `side` px, area-averaged."""
    scale = side / max(image.size)
    if scale >= 1:
        return np.asarray(image)
    # Pillow's integer reduce() is a fast box filter; the exact size is reached on the rest.
    factor = int(1 / scale)
    reduced = image.reduce(factor) if factor >= 2 else image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return cv2.resize(np.asarray(reduced), size, interpolation=cv2.INTER_AREA)


def _box_near(alpha: np.ndarray, mask: np.ndarray) -> tuple[int, int, int, int]:
    """The product box, searched only near the analysis mask's box (a 36 MP scan is slow)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return _box(alpha)
    sy, sx = alpha.shape[0] / mask.shape[0], alpha.shape[1] / mask.shape[1]
    top, left = max(0, int((rows[0] - 2) * sy)), max(0, int((cols[0] - 2) * sx))
    bottom, right = int((rows[-1] + 3) * sy), int((cols[-1] + 3) * sx)
    x0, y0, x1, y1 = _box(alpha[top:bottom, left:right])
    return x0 + left, y0 + top, x1 + left, y1 + top


def _box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((alpha > 24).any(axis=1))
    if len(rows) == 0:
        h, w = alpha.shape
        return 0, 0, w, h
    cols = np.flatnonzero((alpha[rows[0] : rows[-1] + 1] > 24).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
