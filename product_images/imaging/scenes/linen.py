"""A linen cloth on the table: a plain weave of uneven threads, with soft folds."""

from __future__ import annotations

import numpy as np

from product_images.imaging.scenes.base import Backdrop, ScenePlan, noise
from product_images.imaging.scenes.room import tabletop

__all__ = ["NAME", "PALETTES", "draw"]

NAME = "linen"
# name -> (cloth colour, wall colour)
PALETTES = {
    "natural linen": ((204, 190, 164), (236, 233, 226)),
    "white linen": ((236, 233, 226), (206, 208, 210)),
    "charcoal linen": ((84, 84, 86), (222, 218, 210)),
}
_THREAD_CM = 0.11


def draw(plan: ScenePlan, palette: str) -> Backdrop:
    cloth, wall = PALETTES[palette]

    def texture(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        # Threads finer than ~3 px would alias: their contrast fades with the pixel's span.
        span = np.abs(np.gradient(z, axis=0)) + 1e-3
        visible = np.clip(1.5 - span / _THREAD_CM, 0, 1)
        warp = np.sin(2 * np.pi * x / _THREAD_CM)
        weft = np.sin(2 * np.pi * z / _THREAD_CM)
        slub = noise(x * 0.2, z * 8.0, 1.0, plan.seed + 7, 2)
        weave = visible * (0.05 * warp * weft + 0.04 * slub)
        folds = 0.05 * noise(x, z, 14.0, plan.seed + 8, 2)
        return (1.0 + weave + folds)[..., None] * np.asarray(cloth, np.float32)

    image = tabletop(plan, texture, wall)
    return Backdrop(image, f"{palette} cloth", "studio", plan.light, (72, 68, 66))
