"""Full-resolution alpha for a mask found at a lower resolution.

Only a narrow band around the mask's outline is uncertain. There, every full-resolution pixel
is explained as a mix of the product's and the background's local colours,
I = a*F + (1 - a)*B, and its alpha read off the line from B to F. F and B are local means of
the surely-product and surely-background pixels next to the band, so a pixel of a soft or
anti-aliased edge gets the opacity it shows, and the outline lands where the photo puts it,
not where the coarse mask did. Where F and B look alike (white on white) the colours say
little, and the upsampled mask is kept instead.

The work grows with the outline's length, not with the photo: a 36 MP photo costs about as
much as a 2 MP one, apart from reading its band pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["edge_colours", "refine_alpha"]

_BAND = 2  # analysis px each side of the mask outline that may still move
_SIGMA = 3.0  # analysis px: the reach of the local product and background colours
_CLEAR = (20.0, 40.0)  # RGB distance F-B: below the first the colours decide nothing,
# above the second they decide alone
_FAINT = 8  # alpha below this (of 255) is noise that would tint a pure white background


def refine_alpha(
    rgb: np.ndarray, detail: np.ndarray, mask: np.ndarray, threshold: float
) -> np.ndarray:
    """Alpha (uint8) on the full-resolution `rgb` for `mask`, found on `detail` (a downscaled
    copy of `rgb`); `threshold` is the colour difference that set a pixel apart from the
    background."""
    h, w = rgb.shape[:2]
    band = _band(mask)
    alpha = _upsampled(mask.astype(np.float32), (w, h))
    ys, xs = np.nonzero(_upsampled(band.astype(np.float32), (w, h)) > 0)
    if len(ys):
        alpha[ys, xs] = _band_alpha(rgb, detail, mask, ys, xs, threshold)
    out = (alpha * 255 + 0.5).astype(np.uint8)
    out[out < _FAINT] = 0
    return out


def edge_colours(
    rgb: np.ndarray, alpha: np.ndarray, ys: np.ndarray, xs: np.ndarray, side: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The local product and background colours at the pixels (ys, xs) of a cut-out, and the
    weight each estimate rests on (near 0: no such pixels nearby). Read at `side` px."""
    h, w = alpha.shape
    scale = min(1.0, side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    small_alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA) if scale < 1 else alpha
    product, product_weight = _local_mean(small, small_alpha > 250)
    background, background_weight = _local_mean(small, small_alpha < 5)
    maps = _sample_maps(ys, xs, (size[0] / w, size[1] / h))
    return (
        _sample(product, maps),
        _sample(background, maps),
        _sample(product_weight, maps)[:, 0],
        _sample(background_weight, maps)[:, 0],
    )


def _band(mask: np.ndarray) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _BAND + 1, 2 * _BAND + 1))
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) > cv2.erode(m, kernel)).astype(bool)


def _upsampled(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image.copy()
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def _band_alpha(
    rgb: np.ndarray,
    detail: np.ndarray,
    mask: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Alpha of the band pixels (ys, xs) of the full-resolution image."""
    core = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ground = ~cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    product, product_weight = _local_mean(detail, core)
    background, background_weight = _local_mean(detail, ground)
    scale = (detail.shape[1] / rgb.shape[1], detail.shape[0] / rgb.shape[0])
    maps = _sample_maps(ys, xs, scale)
    prior = _sample(mask.astype(np.float32), maps)[:, 0]  # where colours decide nothing
    f = _sample(product, maps)
    b = _sample(background, maps)
    known = np.minimum(_sample(product_weight, maps), _sample(background_weight, maps))[:, 0]
    pixel = rgb[ys, xs].astype(np.float32)
    span = f - b
    length2 = np.einsum("ij,ij->i", span, span)
    mixed = np.clip(np.einsum("ij,ij->i", pixel - b, span) / np.maximum(length2, 1e-3), 0, 1)
    low, high = _CLEAR
    trust = np.clip((np.sqrt(length2) - low) / (high - low), 0, 1) * (known > 0.05)
    alpha = trust * mixed + (1 - trust) * prior
    # A pixel that no mix of the two local colours explains (a thin white rim on a blue shoe,
    # read against the shoe's mean colour) is product as far as the mask said.
    residual = np.linalg.norm(pixel - b - mixed[:, None] * span, axis=1)
    unlike = residual > threshold
    return np.where(unlike, np.maximum(alpha, prior), alpha).astype(np.float32)


def _local_mean(image: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: the Gaussian-weighted mean colour of the `where` pixels near
    each pixel, and how much weight it rests on."""
    weight = where.astype(np.float32)
    total = cv2.GaussianBlur(weight, (0, 0), _SIGMA)
    summed = cv2.GaussianBlur(image.astype(np.float32) * weight[..., None], (0, 0), _SIGMA)
    mean = summed / np.maximum(total, 1e-6)[..., None]
    return mean.astype(np.float32), total


_ROW = 1024  # remap() wants maps under 32767 px a side: points go in rows of this many


def _sample_maps(
    ys: np.ndarray, xs: np.ndarray, scale: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, int]:
    """remap() coordinates of full-resolution pixel centres on the analysis grid."""
    count = len(ys)
    rows = -(-count // _ROW)
    map_x = np.zeros(rows * _ROW, np.float32)
    map_y = np.zeros(rows * _ROW, np.float32)
    map_x[:count] = (xs.astype(np.float32) + 0.5) * scale[0] - 0.5
    map_y[:count] = (ys.astype(np.float32) + 0.5) * scale[1] - 0.5
    return map_x.reshape(rows, _ROW), map_y.reshape(rows, _ROW), count


def _sample(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    """Bilinear samples of `image` at the map coordinates, one row per point."""
    map_x, map_y, count = maps
    values = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return values.reshape(map_x.size, -1)[:count]
