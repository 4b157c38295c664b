"""The transparent cut-out master: the source's pixels with our mask as alpha."""

from __future__ import annotations

import cv2
import numpy as np

from product_images.errors import RenderError

__all__ = ["encode_cutout"]


def encode_cutout(rgb: np.ndarray, alpha: np.ndarray) -> bytes:
    """An RGBA PNG on the source's pixel grid (fast lossless settings, as for the masters)."""
    if rgb.shape[:2] != alpha.shape:
        raise RenderError(f"mask {alpha.shape} does not match the photo {rgb.shape[:2]}")
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
    bgra[..., 3] = alpha
    params = [
        cv2.IMWRITE_PNG_COMPRESSION,
        1,
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_RLE,
        cv2.IMWRITE_PNG_FILTER,
        cv2.IMWRITE_PNG_FILTER_SUB,
    ]
    ok, buffer = cv2.imencode(".png", bgra, params)
    if not ok:
        raise RenderError("could not encode the cut-out as PNG")
    return buffer.tobytes()
