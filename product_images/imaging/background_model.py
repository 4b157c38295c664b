"""What the background of a product photo looks like, learnt from the photo's border.

Two models, and the one that explains the border better is used:
- a smooth surface (a quadratic in x and y per Lab channel): white sweeps, plain walls,
  gradients and vignetting; it predicts the background colour *under* the product, so even a
  white product on white stands out by a few levels;
- up to three colour clusters (k-means): textured or patterned backgrounds, where no smooth
  surface fits and a pixel is background when its colour is one the border shows.

`difference` then says, per pixel, how far it is from the background and whether that
difference is a change of light only (a shadow, a hot spot: same hue) or looks like an object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

# np.median imports numpy.ma on first use; two threads importing it at once can fail with a
# RecursionError in importlib (seen once in a catalog flow), so one thread imports it here.
import numpy.ma

from product_images.imaging.colour_distance import colour_distance

__all__ = [
    "BackgroundModel",
    "Difference",
    "border_mask",
    "difference",
    "fit_background",
    "refit_background",
]

_BORDER = 0.03  # share of each side treated as known background
_MIN_THRESHOLD = 6.0  # Lab (OpenCV 8-bit scale): below this a change is invisible anyway
_SHADOW_DEPTH = -120.0  # darker than this (Lab L, 0-255) is an object, never a shadow
_HOT_SPOT = 80.0  # lighter than this is an object, never a hot spot of the lighting
_REFIT_DEGREE = 4  # the refit surface: x^i y^j with i + j <= 4
_CALM = 8.0  # colour-cluster noise under which a smooth refit is still worth trying
_SHADOW_HUE = 4.0  # light changes a and b by at most this plus a quarter of the L change


@dataclass(frozen=True)
class BackgroundModel:
    """The background as learnt from the border of a working-resolution photo."""

    smooth: bool  # True: a smooth surface; False: colour clusters of a textured background
    surface: np.ndarray  # HxWx3 Lab float32, the predicted background (smooth) or its mean
    centres: np.ndarray  # Kx3 Lab float32 colour clusters of the border
    noise: float  # how far border pixels sit from the model (90th percentile, Lab)
    threshold: float  # difference above which a pixel is not background
    rgb: tuple[int, int, int]  # the background's median colour


@dataclass(frozen=True)
class Difference:
    """Per pixel: distance to the background (Lab) and whether it is a change of light only."""

    distance: np.ndarray  # HxW float32
    light_only: np.ndarray  # HxW bool: darker or lighter, same hue, not too far (shadow, spot)
    darker: np.ndarray  # HxW bool: darker than the background


def border_mask(shape: tuple[int, ...]) -> np.ndarray:
    """The frame's outer band, assumed to show background."""
    h, w = shape[:2]
    band = max(2, round(min(h, w) * _BORDER))
    border = np.zeros((h, w), bool)
    border[:band], border[-band:], border[:, :band], border[:, -band:] = True, True, True, True
    return border


def fit_background(lab: np.ndarray, border: np.ndarray) -> BackgroundModel:
    """The model (smooth surface or colour clusters) that explains the border better."""
    ys, xs = np.nonzero(border)
    ys, xs = ys[:: max(1, len(ys) // 20_000)], xs[:: max(1, len(xs) // 20_000)]
    samples = lab[ys, xs]
    coefficients, kept = _robust_surface(_design(ys, xs, lab.shape), samples)
    surface_error = colour_distance(samples - _design(ys, xs, lab.shape) @ coefficients)
    centres = _clusters((samples[kept] if kept.sum() > 30 else samples)[::3])
    cluster_error = _nearest(samples, centres)
    smooth_noise = float(np.percentile(surface_error[kept], 90))
    cluster_noise = float(np.percentile(cluster_error, 90))
    smooth = _smooth_wins(smooth_noise, cluster_noise)
    noise = smooth_noise if smooth else cluster_noise
    if smooth:
        surface = _evaluate(coefficients, lab.shape)
    else:
        surface = np.broadcast_to(samples.mean(axis=0), lab.shape).astype(np.float32)
    return BackgroundModel(smooth, surface, centres, noise, _threshold(noise), _median_rgb(samples))


def refit_background(
    lab: np.ndarray, model: BackgroundModel, exclude: np.ndarray, rounds: int = 3
) -> BackgroundModel:
    """A smooth model refitted, with more freedom, to all the background the photo shows.

    The border alone cannot see a light fall-off or a hot spot behind the product; the
    background visible around the product can. Each round admits the pixels the previous
    surface explains, so the fit grows inwards without taking in the product. A calm
    background the border's quadratic missed (a strong fall-off) can turn out smooth here.
    """
    if not model.smooth and model.noise > _CALM:
        return model
    # At most ~40k samples: a 15-term surface needs far fewer, and the fit's cost grows with
    # them (a 320x240 photo: 77k samples cost 0.1 s of CPU, a sixth of its product).
    step = max(1, math.ceil(np.sqrt(lab.shape[0] * lab.shape[1] / 40_000)))
    ys, xs = np.mgrid[0 : lab.shape[0] : step, 0 : lab.shape[1] : step]
    ys, xs = ys.ravel(), xs.ravel()
    samples = lab[ys, xs]
    design = _design(ys, xs, lab.shape, _REFIT_DEGREE)
    known = ~exclude[ys, xs]
    for _ in range(rounds):
        if known.sum() < 20 * design.shape[1]:
            return model
        coefficients, _kept = _robust_surface(design[known], samples[known])
        error = colour_distance(samples - design @ coefficients)
        known = error < model.threshold
    if not known.any():
        return model
    noise = float(np.percentile(error[known], 90))
    if not _smooth_wins(noise, float(np.percentile(_nearest(samples[known], model.centres), 90))):
        return model
    surface = _evaluate(coefficients, lab.shape, _REFIT_DEGREE)
    return replace(model, smooth=True, surface=surface, noise=noise, threshold=_threshold(noise))


def _smooth_wins(surface_noise: float, cluster_noise: float) -> bool:
    """A smooth surface is preferred unless colour clusters explain the background clearly
    better (a texture repeats colours but no surface follows it)."""
    return surface_noise <= max(3.0, 1.2 * cluster_noise)


def difference(lab: np.ndarray, model: BackgroundModel) -> Difference:
    """How far each pixel is from the background, and whether only the light changed."""
    expected = model.surface if model.smooth else _nearest_centre(lab, model.centres)
    delta = lab - expected
    light = delta[..., 0]
    hue = np.hypot(delta[..., 1], delta[..., 2])
    distance = np.sqrt(light**2 + hue**2).astype(np.float32)
    light_only = (light > _SHADOW_DEPTH) & (light < _HOT_SPOT)
    light_only &= hue < _SHADOW_HUE + 0.25 * np.abs(light)
    return Difference(distance, light_only, light < 0)


def _threshold(noise: float) -> float:
    # A background pixel rarely sits further than twice the 90th percentile of the border.
    return max(_MIN_THRESHOLD, 2.0 * noise)


def _powers(coordinates: np.ndarray, size: int, degree: int) -> np.ndarray:
    """Columns t^0..t^degree of coordinates normalised to -1..1."""
    t = coordinates.astype(np.float64) / max(1, size - 1) * 2 - 1
    return np.stack([t**i for i in range(degree + 1)], axis=1)


def _terms(degree: int) -> list[tuple[int, int]]:
    """The (power of x, power of y) of each polynomial term, i + j <= degree."""
    return [(i, d - i) for d in range(degree + 1) for i in range(d + 1)]


def _design(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, ...], degree: int = 2) -> np.ndarray:
    """Polynomial terms x^i y^j (i + j <= degree) of coordinates normalised to -1..1."""
    px, py = _powers(xs, shape[1], degree), _powers(ys, shape[0], degree)
    return np.stack([px[:, i] * py[:, j] for i, j in _terms(degree)], axis=1)


def _robust_surface(design: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares, twice refitted without outliers (a product touching the border)."""
    kept = np.ones(len(samples), bool)
    coefficients = _least_squares(design, samples)
    for _ in range(2):
        error = colour_distance(samples - design @ coefficients)
        limit = max(3.0, 3.0 * float(np.median(error[kept])) * 1.4826)
        if (error < limit).sum() < design.shape[1] * 4:
            break
        kept = error < limit
        coefficients = _least_squares(design[kept], samples[kept])
    return coefficients, kept


def _least_squares(design: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Normal equations with a touch of ridge: small systems, far faster than an SVD."""
    gram = design.T @ design
    gram += np.eye(len(gram)) * 1e-6 * np.trace(gram)
    return np.linalg.solve(gram, design.T @ samples.astype(np.float64))


def _evaluate(coefficients: np.ndarray, shape: tuple[int, ...], degree: int = 2) -> np.ndarray:
    """The surface on every pixel, as (powers of y) @ (per-row polynomials in x)."""
    h, w = shape[:2]
    px, py = _powers(np.arange(w), w, degree), _powers(np.arange(h), h, degree)
    surface = np.empty((h, w, 3), np.float32)
    for channel in range(3):
        grid = np.zeros((degree + 1, degree + 1))
        for k, (i, j) in enumerate(_terms(degree)):
            grid[j, i] = coefficients[k, channel]
        surface[..., channel] = py @ (grid @ px.T)
    return surface


def _clusters(samples: np.ndarray) -> np.ndarray:
    """Up to three colour clusters of the border, ignoring rare ones (stray product pixels)."""
    k = min(3, len(samples))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centres = cv2.kmeans(
        np.ascontiguousarray(samples, np.float32), k, None, criteria, 2, cv2.KMEANS_PP_CENTERS
    )
    counts = np.bincount(labels.ravel(), minlength=k)
    return np.asarray(centres[counts >= 0.05 * len(samples)], np.float32)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.min(colour_distance(points[:, None, :] - centres[None]), axis=1)


def _nearest_centre(lab: np.ndarray, centres: np.ndarray) -> np.ndarray:
    flat = lab.reshape(-1, 3)
    index = np.argmin(colour_distance(flat[:, None, :] - centres[None]), axis=1)
    return centres[index].reshape(lab.shape)


def _median_rgb(lab_samples: np.ndarray) -> tuple[int, int, int]:
    median = np.median(lab_samples, axis=0).astype(np.float32).reshape(1, 1, 3)
    rgb = cv2.cvtColor(np.clip(median, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)[0, 0]
    return int(rgb[0]), int(rgb[1]), int(rgb[2])
