"""Oak or walnut boards running across the frame: grain along the boards, seams between."""

from __future__ import annotations

import numpy as np

from product_images.imaging.scenes.base import Backdrop, ScenePlan, noise
from product_images.imaging.scenes.room import tabletop

__all__ = ["NAME", "PALETTES", "draw"]

NAME = "wood"
# name -> (board colour, wall colour)
PALETTES = {
    "light oak": ((196, 158, 112), (236, 231, 222)),
    "walnut": ((112, 78, 54), (226, 222, 214)),
}
_BOARD_CM = 12.0


def draw(plan: ScenePlan, palette: str) -> Backdrop:
    board, wall = PALETTES[palette]

    def texture(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        index = np.floor(z / _BOARD_CM)
        within = z / _BOARD_CM - index
        tint = 1.0 + 0.06 * np.sin(index * 12.9898 + plan.seed)  # boards differ a little
        wobble = noise(x, index * 7.0 + within, 25.0, plan.seed + 2, 2)
        grain = np.sin((within * 14.0 + 1.5 * wobble) * np.pi)
        streak = noise(x / 8.0, z * 3.0, 1.0, plan.seed + 3, 3)
        seam = 1.0 - 0.35 * np.exp(-((np.minimum(within, 1 - within) * _BOARD_CM / 0.15) ** 2))
        shade = tint * (1.0 + 0.05 * grain + 0.06 * streak) * seam
        return shade[..., None] * np.asarray(board, np.float32)

    image = tabletop(plan, texture, wall)
    return Backdrop(image, f"{palette} tabletop", "studio", plan.light, (64, 56, 52))
