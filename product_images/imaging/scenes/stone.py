"""A stone slab: white marble with soft veins, or dark slate with a fine grain."""

from __future__ import annotations

import numpy as np

from product_images.imaging.scenes.base import Backdrop, ScenePlan, noise
from product_images.imaging.scenes.room import tabletop

__all__ = ["NAME", "PALETTES", "draw"]

NAME = "stone"
# name -> (stone colour, vein or grain colour, wall colour)
PALETTES = {
    "white marble": ((234, 232, 228), (168, 168, 174), (214, 214, 212)),
    "slate": ((92, 96, 102), (80, 83, 90), (212, 208, 200)),
}


def draw(plan: ScenePlan, palette: str) -> Backdrop:
    stone, vein, wall = PALETTES[palette]
    base, line = np.asarray(stone, np.float32), np.asarray(vein, np.float32)

    def texture(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        # Marble veins: a few long, gently wandering bands, faint and soft-edged.
        warp = noise(x, z, 40.0, plan.seed + 4, 3)
        veins = np.abs(np.sin((0.025 * x + 0.04 * z + 1.2 * warp) * np.pi))
        fade = np.clip(0.5 + noise(x, z, 50.0, plan.seed + 5, 2), 0, 1)
        mix = (np.exp(-veins / 0.12) * fade * 0.45)[..., None]
        cloud = 1.0 + 0.035 * noise(x, z, 8.0, plan.seed + 6, 3)
        grain = 0.02 * noise(x, z, 0.4, plan.seed + 9, 2)  # fine crystals / slate grit
        return (base * (1 - mix) + line * mix) * (cloud + grain)[..., None]

    image = tabletop(plan, texture, wall)
    return Backdrop(image, f"{palette} slab", "studio", plan.light, (70, 70, 78))
