"""Users' backdrop photos for offline scenes: one photo, or a folder of them (the
`scene_background` setting), and the one whose floor colour suits a product best."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from product_images.imaging.scenes import suitability
from product_images.store import local_path, read_url

__all__ = ["backdrop_urls", "best_backdrop"]

_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def backdrop_urls(setting: str) -> tuple[str, ...]:
    """The photos a setting names: a local folder's images (sorted), else the one URL."""
    if "://" not in setting or setting.startswith("file:"):
        folder = local_path(setting)
        if folder.is_dir():
            return tuple(str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in _SUFFIXES)
    return (setting,)


@lru_cache(maxsize=16)
def _photo(url: str) -> tuple[Image.Image, tuple[int, int, int]]:
    """A backdrop photo and the mean colour of its lower third (where products stand)."""
    image = Image.open(io.BytesIO(read_url(url)))
    image.load()
    rgb = image.convert("RGB")
    floor = np.asarray(rgb.reduce(8))[-max(1, rgb.height // 24) :].reshape(-1, 3).mean(axis=0)
    return rgb, tuple(int(v) for v in floor)  # type: ignore[return-value]


def best_backdrop(setting: str, tone: np.ndarray) -> tuple[Image.Image, str] | None:
    """The photo that shows a product of mean CIELAB `tone` best, and its file name."""
    urls = backdrop_urls(setting)
    if not urls:
        return None
    best = max(urls, key=lambda url: (suitability(tone, _photo(url)[1]), url))
    return _photo(best)[0], Path(best).name
