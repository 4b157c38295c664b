"""Offline scenes: surfaces drawn in code (one module each, found through `SURFACES`) and
users' backdrop photos, and the choice of the one that suits a product's colours.

Each surface module has NAME, PALETTES (name -> colours) and draw(plan, palette) -> Backdrop.
"""

from __future__ import annotations

import cv2
import numpy as np

from product_images.imaging.scenes import linen, paper, photo, stone, wood
from product_images.imaging.scenes.base import Backdrop, ScenePlan

__all__ = [
    "SURFACES",
    "Backdrop",
    "ScenePlan",
    "choose_look",
    "draw_look",
    "looks",
    "photo",
    "suitability",
]

SURFACES = {module.NAME: module for module in (wood, stone, linen, paper)}


def looks() -> list[tuple[str, str]]:
    """Every (surface, palette) the studio can draw."""
    return [(name, palette) for name, module in SURFACES.items() for palette in module.PALETTES]


def _lab(rgb: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    pixel = np.asarray(rgb, np.float32).reshape(1, 1, 3) / 255.0
    return cv2.cvtColor(pixel, cv2.COLOR_RGB2LAB).reshape(3)


def _floor_colour(surface: str, palette: str) -> tuple[int, int, int]:
    colours = SURFACES[surface].PALETTES[palette]
    return colours if isinstance(colours[0], int) else colours[0]


def suitability(tone: np.ndarray, colour: tuple[int, int, int]) -> float:
    """How well a floor of `colour` shows a product of mean CIELAB `tone`: lightness
    contrast first (a dark product on a light floor), then colour difference; a strongly
    coloured floor close in hue to the product (a brown bag on walnut) is marked down."""
    floor = _lab(colour)
    contrast = min(abs(float(floor[0] - tone[0])), 45.0)
    difference = min(float(np.linalg.norm(floor[1:] - tone[1:])), 40.0)
    chroma = float(np.hypot(*floor[1:]))
    same_hue = _hue_gap(floor, tone) < 35 and chroma > 12 and float(np.hypot(*tone[1:])) > 12
    return contrast + 0.3 * difference - (25.0 if same_hue else 0.0)


# A plain sweep shows any product but says nothing: pick it only when no surface suits.
_PLAIN_PENALTY = 8.0


def _hue_gap(a: np.ndarray, b: np.ndarray) -> float:
    gap = abs(np.degrees(np.arctan2(a[2], a[1]) - np.arctan2(b[2], b[1]))) % 360
    return float(min(gap, 360 - gap))


def choose_look(tone: np.ndarray, seed: int, spread: float = 8.0) -> tuple[str, str]:
    """The (surface, palette) for a product: among those within `spread` of the best score,
    one picked by the product's seed, so a catalog gets variety but each product a stable
    and suitable scene."""
    scored = [
        (suitability(tone, _floor_colour(*look)) - _PLAIN_PENALTY * (look[0] == "paper"), look)
        for look in looks()
    ]
    best = max(score for score, _ in scored)
    near = sorted(look for score, look in scored if score >= best - spread)
    return near[seed % len(near)]


def draw_look(plan: ScenePlan, surface: str, palette: str) -> Backdrop:
    """Draw one surface."""
    return SURFACES[surface].draw(plan, palette)
