"""What every scene surface draws from and returns: the plan of a shot and its backdrop.

A scene is a wall behind a floor seen by a camera a little above it. The plan fixes where the
product stands, how many centimetres a pixel spans where it stands (from its real size), and
where the light comes from, so each surface draws its texture at a believable scale and the
product's shadow falls the way the backdrop is lit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

__all__ = ["Backdrop", "ScenePlan", "floor_coordinates", "noise", "soft_light", "wall_row"]

RGB = tuple[int, int, int]

# A camera looking down at about 20 degrees with a normal lens: focal length in frame widths
# and its height above the floor per unit of distance to the product.
_FOCAL = 1.2
_CAMERA_RISE = 0.36


@dataclass(frozen=True)
class ScenePlan:
    """Where and how big the product is in a square scene of `side` pixels."""

    side: int
    floor_y: int  # row the product's base stands on
    cm_per_px: float  # real size of a pixel where the product stands
    light: float  # where shadows fall on the floor, degrees (0 right, 90 away)
    tone: tuple[float, float, float]  # the product's mean CIELAB colour
    seed: int  # per product, for texture variation
    wall_cm: float = 35.0  # how far behind the product the wall stands

    @property
    def focal(self) -> float:
        return _FOCAL * self.side

    @property
    def horizon(self) -> float:
        """The vanishing line of the floor (above the frame's middle for a low camera)."""
        return self.floor_y - _CAMERA_RISE * self.focal

    def distance_cm(self) -> float:
        """Camera to product, along the floor."""
        return self.cm_per_px * self.focal

    def wall_y(self) -> int:
        """Row where the floor meets the wall behind the product."""
        near = self.distance_cm()
        return round(self.horizon + (self.floor_y - self.horizon) * near / (near + self.wall_cm))


@dataclass(frozen=True)
class Backdrop:
    """A drawn or photographed backdrop, and the facts the product is placed by."""

    image: np.ndarray  # float32, H x W x 3, 0..255
    name: str  # what it shows, e.g. "oak tabletop"
    kind: Literal["studio", "photo"]
    light: float  # shadow direction on its floor, degrees
    shade: RGB = (70, 66, 72)  # what a shadow multiplies the floor's light by (x / 255)


def floor_coordinates(plan: ScenePlan, rows: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """Floor position in centimetres (X across, Z away from the camera, 0 at the product)
    of each pixel of `rows` (a pinhole camera over a flat floor)."""
    depth_px = np.maximum(rows.astype(np.float32) - plan.horizon, 1.0)[:, None]
    z = plan.distance_cm() * (plan.floor_y - plan.horizon) / depth_px
    x = (np.arange(width, dtype=np.float32)[None, :] - plan.side / 2) * z / plan.focal
    return x, z - plan.distance_cm()


def noise(x: np.ndarray, y: np.ndarray, scale: float, seed: int, octaves: int = 3) -> np.ndarray:
    """Smooth value noise (-1..1) at positions x, y (any unit) with features `scale` big."""
    rng = np.random.default_rng(seed)
    total = np.zeros(np.broadcast_shapes(x.shape, y.shape), np.float32)
    weight = 0.0
    for octave in range(octaves):
        grid = rng.uniform(-1, 1, (64, 64)).astype(np.float32)
        step = scale / 2**octave
        mx = np.broadcast_to((x / step) % 63, total.shape).astype(np.float32)
        my = np.broadcast_to((y / step) % 63, total.shape).astype(np.float32)
        total += cv2.remap(grid, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_WRAP) * 0.5**octave
        weight += 0.5**octave
    return total / weight


def soft_light(plan: ScenePlan, width: int, strength: float = 0.12) -> np.ndarray:
    """Horizontal falloff of a key light on the side the shadows fall away from."""
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    towards = -np.cos(np.radians(plan.light))  # light from the left when shadows fall right
    return 1.0 + strength * towards * x


def wall_row(plan: ScenePlan, height: int) -> np.ndarray:
    """Vertical shading of the wall: lit from above, darker where it meets the floor."""
    y = np.arange(height, dtype=np.float32)
    top = 1.0 - 0.08 * y / max(1, height)
    corner = 1.0 - 0.10 * np.exp(-(plan.wall_y() - y).clip(0) / (0.03 * plan.side))
    return top * corner
