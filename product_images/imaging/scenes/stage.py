"""Put a product on a backdrop: standing on its floor, lit like it, with a matching shadow."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

from product_images.imaging.floor_shadow import apply_shadow
from product_images.imaging.scenes import choose_look, draw_look, photo
from product_images.imaging.scenes.base import Backdrop, ScenePlan, soft_light
from product_images.specs import ShadowSpec

__all__ = ["FLOOR", "Staged", "stage_product", "tone_of"]

Box = tuple[int, int, int, int]
FLOOR = 0.84  # the product's base, share of the frame's height
_DRAW_SCALE = 2  # studio surfaces are drawn at half size: soft, and 4x cheaper


@dataclass(frozen=True)
class Staged:
    """A finished scene: pixels, where the product is, and what it stands in front of."""

    image: np.ndarray
    box: Box
    backdrop: Backdrop


def tone_of(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour of the product's pixels."""
    pixels = rgb[mask > 128]
    mean = pixels.mean(axis=0) if len(pixels) else np.array([200.0, 200.0, 200.0])
    return cv2.cvtColor(
        (mean / 255.0).astype(np.float32).reshape(1, 1, 3), cv2.COLOR_RGB2LAB
    ).reshape(3)


def _plan(
    side: int, size: tuple[int, int], size_cm: float, tone: np.ndarray, seed: int
) -> ScenePlan:
    work = side // _DRAW_SCALE
    cm_per_px = size_cm / (max(size) / _DRAW_SCALE)
    light = 50.0 if seed % 2 == 0 else 130.0  # key light from the left or from the right
    return ScenePlan(work, round(FLOOR * work), cm_per_px, light, tuple(tone), seed)


def _backdrop(plan: ScenePlan, side: int, backdrop: Image.Image | None, name: str) -> Backdrop:
    if backdrop is not None:
        return photo.draw(backdrop, side, name)
    drawn = draw_look(plan, *choose_look(np.asarray(plan.tone), plan.seed))
    image = cv2.resize(drawn.image, (side, side), interpolation=cv2.INTER_CUBIC)
    return Backdrop(image, drawn.name, drawn.kind, drawn.light, drawn.shade)


def stage_product(
    product: np.ndarray,
    mask: np.ndarray,
    side: int,
    size_cm: float,
    seed: int,
    backdrop: Image.Image | None = None,
    backdrop_name: str = "",
    reflection: bool = False,
) -> Staged:
    """The product (RGB and mask at its scene size) standing centred on the floor of a
    drawn surface that suits its colours, or of `backdrop`, lit from the backdrop's light."""
    height, width = mask.shape
    plan = _plan(side, (width, height), size_cm, tone_of(product, mask), seed)
    scene = _backdrop(plan, side, backdrop, backdrop_name)
    bottom = round(FLOOR * side)
    left = (side - width) // 2
    box = (left, bottom - height, left + width, bottom)
    alpha = np.zeros((side, side), np.uint8)
    alpha[box[1] : box[3], box[0] : box[2]] = mask
    lit = _relight(product, scene, plan, box)
    a = mask.astype(np.float32)[..., None] / 255.0
    region = scene.image[box[1] : box[3], box[0] : box[2]]
    # To 8 bits apart: the backdrop whole, the product's box blended (no float copy of the
    # whole 2048 px canvas; the same values).
    pixels = _to_bytes(scene.image)
    blended = (region * (1 - a) + lit * a).astype(region.dtype)  # rounded as the canvas was
    pixels[box[1] : box[3], box[0] : box[2]] = _to_bytes(blended)
    shadow = ShadowSpec(
        contact=0.65,
        cast=0.45,
        reflection=0.22 if reflection else 0.0,
        direction=scene.light,
        length=0.45,
        softness=0.65,
        reach=0.5,
    )
    return Staged(apply_shadow(pixels, alpha, box, shadow, scene.shade), box, scene)


def _to_bytes(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _relight(product: np.ndarray, scene: Backdrop, plan: ScenePlan, box: Box) -> np.ndarray:
    """The product under the scene's light: its colour cast pulled a little towards the
    backdrop's, its exposure towards the backdrop's, and the key light's falloff across."""
    around = scene.image[max(0, box[1] - 40) : box[3] : 4, ::4].reshape(-1, 3).mean(axis=0)
    cast = around / max(float(around.mean()), 1.0)
    exposure = float(np.clip((around.mean() / 215.0) ** 0.2, 0.92, 1.04))
    light = replace(plan, light=scene.light)
    falloff = soft_light(light, scene.image.shape[1], 0.08)[box[0] : box[2]]
    tint = (0.88 + 0.12 * cast)[None, None, :] * exposure * falloff[None, :, None]
    return product.astype(np.float32) * tint
