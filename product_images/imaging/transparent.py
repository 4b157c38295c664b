"""The transparent cut-out master: the source's pixels with our mask as alpha."""

from __future__ import annotations

import cv2
import numpy as np

from product_images.errors import RenderError
from product_images.imaging.encode import fast_png

__all__ = ["encode_cutout"]


def encode_cutout(rgb: np.ndarray, alpha: np.ndarray) -> bytes:
    """An RGBA PNG on the source's pixel grid (fast lossless settings, as for the masters)."""
    if rgb.shape[:2] != alpha.shape:
        raise RenderError(f"mask {alpha.shape} does not match the photo {rgb.shape[:2]}")
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
    bgra[..., 3] = alpha
    return fast_png(bgra)
