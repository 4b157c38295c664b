"""A user's backdrop photo: cropped to the square, its floor line and light read from it."""

from __future__ import annotations

import numpy as np
from PIL import Image

from product_images.imaging.scenes.base import Backdrop

__all__ = ["draw", "light_direction"]


def draw(photo: Image.Image, side: int, name: str) -> Backdrop:
    """The photo covering the square; shadows fall away from its brighter side."""
    image = np.asarray(_cover(photo.convert("RGB"), side), np.float32)
    return Backdrop(image, f"backdrop photo {name}", "photo", light_direction(image))


def light_direction(image: np.ndarray) -> float:
    """Shadow direction on the floor: away from the brighter half (60 or 120 degrees, i.e.
    back and to the right when the light comes from the left), straight back when even."""
    grey = image.mean(axis=2)
    half = grey.shape[1] // 2
    left, right = float(grey[:, :half].mean()), float(grey[:, half:].mean())
    if abs(left - right) < 4:
        return 90.0
    return 60.0 if left > right else 120.0


def _cover(image: Image.Image, side: int) -> Image.Image:
    scale = side / min(image.size)
    size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
    resized = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    return resized.crop((left, top, left + side, top + side))
