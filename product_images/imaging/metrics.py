"""Image similarity measures shared by the fidelity guard and the golden-image tests."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

__all__ = ["ssim"]


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean structural similarity of two same-sized images (greyscale, Gaussian window)."""
    if a.size != b.size:
        raise ValueError(f"sizes differ: {a.size} vs {b.size}")
    x = np.asarray(a.convert("L"), np.float64)
    y = np.asarray(b.convert("L"), np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(v: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(v, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))
