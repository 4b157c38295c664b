"""Fidelity guard: does the product in a generated image still look like the source product?

- White masters sit on white, so the generated product is cut out reliably and compared with
  the source cut-out in shape (mask IoU, both scaled to the same box), structure (SSIM of the
  grey crops) and colour (Lab difference of the means).
- Scenes and details show the product among other things or only in part; they are compared
  by colour distribution (hue/saturation histograms), a weaker test that rarely cries wolf.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from product_images.imaging.metrics import ssim
from product_images.imaging.segment import segment_product

__all__ = ["product_similarity"]

Box = tuple[int, int, int, int]
_NORM = 96  # both products are compared at this size
_SHARE = 0.08  # the least share of a scene we expect the product to cover


def product_similarity(
    source_rgb: np.ndarray, source_alpha: np.ndarray, box: Box, generated: Image.Image, variant: str
) -> float:
    """0 (a different product) .. 1 (the same product) for a generated master."""
    product, mask = _crop(source_rgb, source_alpha, box)
    gen = np.asarray(generated.convert("RGB"))
    if variant == "white":
        return _white_similarity(product, mask, gen)
    return _colour_similarity(product, mask, gen)


def _crop(rgb: np.ndarray, alpha: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    left, top, right, bottom = box
    return rgb[top:bottom, left:right], alpha[top:bottom, left:right]


def _normalised(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Product and mask padded to a square around their box and scaled to _NORM."""
    h, w = mask.shape
    side = max(h, w)
    rgb_sq = np.full((side, side, 3), 255, np.uint8)
    mask_sq = np.zeros((side, side), np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    rgb_sq[top : top + h, left : left + w] = rgb
    mask_sq[top : top + h, left : left + w] = mask
    size = (_NORM, _NORM)
    return cv2.resize(rgb_sq, size, interpolation=cv2.INTER_AREA), cv2.resize(mask_sq, size)


def _white_similarity(product: np.ndarray, mask: np.ndarray, generated: np.ndarray) -> float:
    cut = segment_product(Image.fromarray(generated))
    if not cut.alpha.any():
        return 0.0
    gen_product, gen_mask = _crop(generated, cut.alpha, cut.box)
    a_rgb, a_mask = _normalised(product, mask)
    b_rgb, b_mask = _normalised(gen_product, gen_mask)
    inter = np.logical_and(a_mask > 128, b_mask > 128).sum()
    union = np.logical_or(a_mask > 128, b_mask > 128).sum()
    shape = inter / union if union else 0.0
    structure = max(0.0, ssim(Image.fromarray(a_rgb), Image.fromarray(b_rgb)))
    delta_e = float(np.linalg.norm(_mean_lab(a_rgb, a_mask) - _mean_lab(b_rgb, b_mask)))
    return round(float((shape + structure) / 2 * np.exp(-delta_e / 40.0)), 3)


def _mean_lab(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    pixels = lab[mask > 128]
    return pixels.mean(axis=0) if len(pixels) else lab.reshape(-1, 3).mean(axis=0)


def _colour_similarity(product: np.ndarray, mask: np.ndarray, region: np.ndarray) -> float:
    """How much of the product's colour distribution the generated image contains.

    Each hue/saturation bin of the product counts as present in proportion to how much of it
    the image holds, relative to a product covering _SHARE of the image: a scene full of
    other colours still scores 1 if the product's colours are there; a recoloured product
    scores near 0.
    """

    def hist(rgb: np.ndarray, m: np.ndarray | None) -> np.ndarray:
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
        h = cv2.calcHist([hsv], [0, 1], m, [18, 8], [0, 180, 0, 256]).ravel()
        return h / max(float(h.sum()), 1.0)

    inside = (mask > 128).astype(np.uint8) * 255
    p, s = hist(product, inside), hist(region, None)
    present = np.minimum(1.0, s / np.maximum(_SHARE * p, 1e-9))
    return round(float((p * present).sum()), 3)
