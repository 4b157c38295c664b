"""A seamless paper sweep: the wall curving into the floor, no horizon line."""

from __future__ import annotations

import cv2
import numpy as np

from product_images.imaging.scenes.base import Backdrop, ScenePlan, soft_light

__all__ = ["NAME", "PALETTES", "draw"]

NAME = "paper"
PALETTES = {
    "warm paper": (240, 234, 224),
    "grey paper": (214, 214, 214),
    "blush paper": (238, 220, 214),
    "sage paper": (214, 224, 210),
}


def draw(plan: ScenePlan, palette: str) -> Backdrop:
    """Lit from the plan's light: brighter on the wall, falling off over the curve."""
    side = plan.side
    y = np.linspace(0.0, 1.0, side, dtype=np.float32)
    bend = plan.floor_y / side - 0.22
    wall = 0.98 - 0.08 * y
    floor = 0.92 - 0.14 * np.clip((y - bend) / (1 - bend), 0, 1)
    profile = cv2.GaussianBlur(np.where(y < bend, wall, floor)[:, None], (1, 0), side / 30)
    shade = profile * soft_light(plan, side, 0.10)[None, :]
    image = shade[..., None] * np.asarray(PALETTES[palette], np.float32)
    return Backdrop(image, f"{palette} sweep", "studio", plan.light, (80, 78, 82))
