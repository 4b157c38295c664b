"""Full-resolution edges for a mask found at a lower resolution, and the colours on them.

Only a narrow band around the mask's outline is uncertain. There, every full-resolution pixel
is explained as a mix of the product's and the background's local colours,
I = a*F + (1 - a)*B, and its alpha read off the line from B to F. F and B are local means of
the surely-product and surely-background pixels next to the band, so a pixel of a soft or
anti-aliased edge gets the opacity it shows, and the outline lands where the photo puts it,
not where the coarse mask did. Where F and B look alike (white on white) the colours say
little, and the upsampled mask is kept instead.

The work grows with the outline's length, not with the photo: the full-resolution pixels
read are those under the band, found without scanning the whole picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from product_images.imaging.colour_distance import colour_distance
from product_images.imaging.sampling import local_mean, pixels_under, sample, sample_points

__all__ = ["edge_colours", "edge_pixels", "refine_alpha"]

_BAND = 2  # analysis px each side of the mask outline that may still move
_SIGMA = 3.0  # analysis px: the reach of the local product and background colours
_CLEAR = (20.0, 40.0)  # RGB distance F-B: below the first the colours decide nothing,
# above the second they decide alone
_FAINT = 8  # alpha below this (of 255) is noise that would tint a pure white background
_EDGE_SIDE = 1024  # edge colours are read on a copy this size


def refine_alpha(
    rgb: np.ndarray, detail: np.ndarray, mask: np.ndarray, threshold: float
) -> np.ndarray:
    """Alpha (uint8) on the full-resolution `rgb` for `mask`, found on `detail` (a downscaled
    copy of `rgb`); `threshold` is the colour difference that set a pixel apart from the
    background."""
    h, w = rgb.shape[:2]
    solid = (mask * np.uint8(255)).astype(np.uint8)
    alpha = (
        solid
        if solid.shape == (h, w)
        else cv2.resize(solid, (w, h), interpolation=cv2.INTER_LINEAR)
    )
    ys, xs = pixels_under(_band(mask), rgb.shape)
    if len(ys):
        band = _band_alpha(rgb, detail, mask, (ys, xs), threshold)
        alpha[ys, xs] = (band * 255 + 0.5).astype(np.uint8)
    alpha[alpha < _FAINT] = 0
    return alpha


def edge_pixels(alpha: np.ndarray, side: int = _EDGE_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """The semi-transparent pixels of an alpha mask, found near the outline of a small copy."""
    small = _shrunk(alpha, side)
    ring = np.ones((3, 3), np.uint8)
    near = cv2.dilate((small > 0).astype(np.uint8), ring) > cv2.erode(
        (small == 255).astype(np.uint8), ring
    )
    ys, xs = pixels_under(near | ((small > 0) & (small < 255)), alpha.shape)
    soft = (alpha[ys, xs] > 5) & (alpha[ys, xs] < 250)
    return ys[soft], xs[soft]


def edge_colours(
    rgb: np.ndarray, alpha: np.ndarray, ys: np.ndarray, xs: np.ndarray, side: int = _EDGE_SIDE
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The local product and background colours at the pixels (ys, xs) of a cut-out, and the
    weight each estimate rests on (near 0: no such pixels nearby). Read at `side` px."""
    small, small_alpha = _shrunk(rgb, side), _shrunk(alpha, side)
    product, product_weight = local_mean(small, small_alpha > 250, _SIGMA)
    background, background_weight = local_mean(small, small_alpha < 5, _SIGMA)
    points = sample_points(ys, xs, alpha.shape, small_alpha.shape)
    return (
        sample(product, points),
        sample(background, points),
        sample(product_weight, points)[:, 0],
        sample(background_weight, points)[:, 0],
    )


def _shrunk(image: np.ndarray, side: int) -> np.ndarray:
    """Every k-th pixel, for local means that blur far more than the aliasing this adds."""
    step = max(1, -(-max(image.shape[:2]) // side))
    return np.ascontiguousarray(image[::step, ::step]) if step > 1 else image


def _band(mask: np.ndarray) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _BAND + 1, 2 * _BAND + 1))
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) > cv2.erode(m, kernel)).astype(bool)


def _band_alpha(
    rgb: np.ndarray,
    detail: np.ndarray,
    mask: np.ndarray,
    where: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> np.ndarray:
    """Alpha (0-1) of the full-resolution band pixels `where`."""
    ring = np.ones((3, 3), np.uint8)
    core = cv2.erode(mask.astype(np.uint8), ring).astype(bool)
    ground = ~cv2.dilate(mask.astype(np.uint8), ring).astype(bool)
    product, product_weight = local_mean(detail, core, _SIGMA)
    background, background_weight = local_mean(detail, ground, _SIGMA)
    points = sample_points(*where, rgb.shape, detail.shape)
    prior = sample(mask.astype(np.float32), points)[:, 0]  # where colours decide nothing
    f, b = sample(product, points), sample(background, points)
    known = np.minimum(sample(product_weight, points), sample(background_weight, points))[:, 0]
    pixel = rgb[where].astype(np.float32)
    span = f - b
    length2 = np.einsum("ij,ij->i", span, span)
    mixed = np.clip(np.einsum("ij,ij->i", pixel - b, span) / np.maximum(length2, 1e-3), 0, 1)
    low, high = _CLEAR
    trust = np.clip((np.sqrt(length2) - low) / (high - low), 0, 1) * (known > 0.05)
    alpha = trust * mixed + (1 - trust) * prior
    # A pixel that no mix of the two local colours explains (a thin white rim on a blue shoe,
    # read against the shoe's mean colour) is product as far as the mask said.
    residual = colour_distance(pixel - b - mixed[:, None] * span)
    return np.where(residual > threshold, np.maximum(alpha, prior), alpha)
