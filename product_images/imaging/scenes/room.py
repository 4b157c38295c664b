"""A tabletop against a wall: the floor texture of a surface, lit and put in perspective."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from product_images.imaging.scenes.base import (
    RGB,
    ScenePlan,
    floor_coordinates,
    noise,
    soft_light,
    wall_row,
)

__all__ = ["tabletop"]

# colour (0..255, float) of the floor at X, Z centimetres
Texture = Callable[[np.ndarray, np.ndarray], np.ndarray]


def tabletop(plan: ScenePlan, texture: Texture, wall: RGB) -> np.ndarray:
    """Wall above `plan.wall_y()`, textured floor below, both lit from the plan's light;
    the floor is softened with distance from the product (depth of field)."""
    side = plan.side
    wall_y = min(side - 1, max(1, plan.wall_y()))
    rows = np.arange(wall_y, side)
    x, z = floor_coordinates(plan, rows, side)
    floor = texture(x, z) * _floor_light(plan, z)[..., None]
    sharp_floor = _depth_of_field(floor, z, plan)
    out = np.empty((side, side, 3), np.float32)
    out[wall_y:] = sharp_floor
    out[:wall_y] = _wall(plan, wall_y, wall)
    _soften_seam(out, wall_y, side)
    return np.clip(out, 0, 255)


def _floor_light(plan: ScenePlan, z: np.ndarray) -> np.ndarray:
    """Brighter towards the light, a little darker far back (the wall's shade)."""
    across = soft_light(plan, z.shape[1], 0.10)[None, :]
    back = 1.0 - 0.10 * np.clip(z / (plan.wall_cm + 1), 0, 1)
    return across * back


def _depth_of_field(floor: np.ndarray, z: np.ndarray, plan: ScenePlan) -> np.ndarray:
    sigma = max(1.0, plan.side / 300)
    blurred = cv2.GaussianBlur(floor, (0, 0), sigma)
    t = np.clip(np.abs(z) / (0.5 * plan.distance_cm() + 5), 0, 1)[..., None]
    return floor * (1 - t) + blurred * t


def _wall(plan: ScenePlan, height: int, colour: RGB) -> np.ndarray:
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(plan.side, dtype=np.float32)[None, :]
    grain = 1.0 + 0.015 * noise(x, y, plan.side / 6, plan.seed + 1)
    shade = wall_row(plan, height)[:, None] * soft_light(plan, plan.side, 0.14)[None, :] * grain
    return shade[..., None] * np.asarray(colour, np.float32)


def _soften_seam(image: np.ndarray, row: int, side: int) -> None:
    """Blur a thin band where the wall meets the floor (out of focus, not a cut)."""
    band = max(2, side // 150)
    top, bottom = max(0, row - 2 * band), min(side, row + 2 * band)
    image[top:bottom] = cv2.GaussianBlur(image[top:bottom], (0, 0), band / 2)
