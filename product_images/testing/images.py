"""Test and benchmark helpers for pictures: a drawn product with a known mask, and SSIM."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from product_images.imaging.metrics import ssim

__all__ = ["draw_product", "ssim"]


def draw_product(
    size: tuple[int, int] = (800, 600),
    background: tuple[int, int, int] = (235, 235, 232),
    colour: tuple[int, int, int] = (180, 40, 40),
    box: tuple[int, int, int, int] | None = None,
) -> tuple[Image.Image, np.ndarray]:
    """A textured, shaded rounded box on a plain background, and its exact mask (bool)."""
    width, height = size
    left, top, right, bottom = box or (width // 4, height // 5, width * 3 // 4, height * 4 // 5)
    mask = np.zeros((height, width), np.uint8)
    radius = max(2, min(right - left, bottom - top) // 8)
    cv2.rectangle(mask, (left + radius, top), (right - radius, bottom), 1, -1)
    cv2.rectangle(mask, (left, top + radius), (right, bottom - radius), 1, -1)
    for cx, cy in (
        (left + radius, top + radius),
        (right - radius, top + radius),
        (left + radius, bottom - radius),
        (right - radius, bottom - radius),
    ):
        cv2.circle(mask, (cx, cy), radius, 1, -1)
    rng = np.random.default_rng(3)
    shade = np.linspace(1.1, 0.75, width, dtype=np.float32)[None, :, None]
    stripes = 0.9 + 0.1 * np.sin(np.arange(height, dtype=np.float32) / 3.0)[:, None, None]
    texture = np.asarray(colour, np.float32) * shade * stripes + rng.normal(
        0, 6, (height, width, 3)
    )
    canvas = np.broadcast_to(np.asarray(background, np.float32), (height, width, 3))
    pixels = np.where(mask[..., None] == 1, texture, canvas)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), mask.astype(bool)
