"""Shadows and reflections a product casts on the floor it stands on, drawn from its mask.

Three layers, as the paid services sell them: a contact shadow where the product meets the
floor (its footprint, darkest and sharpest), a cast shadow (the silhouette projected away
from a light, softer and fainter with distance from the floor) and an optional mirror
reflection. All are opacity maps on the canvas grid, applied only where the product is not
(never onto the product), and confined to `reach` around the product box so a slot's margin
stays clean.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from product_images.specs import ShadowSpec

__all__ = ["apply_shadow", "floor_layers", "shadow_opacity"]

Box = tuple[int, int, int, int]

# The floor seen from a camera a little above it: a depth d on the floor spans d * this on
# screen (a typical 20-25 degree look down at a tabletop).
_FORESHORTEN = 0.4
_GRID = 640  # px: the largest grid shadows are drawn on


def shadow_opacity(alpha: np.ndarray, box: Box, spec: ShadowSpec) -> np.ndarray:
    """The contact and cast shadows' combined opacity (0..1, float32) on `alpha`'s grid.

    Shadows are smooth, so they are drawn on a grid of at most `_GRID` px and enlarged:
    their wide blurs at 2048 px would take seconds."""
    factor = max(1.0, max(alpha.shape) / _GRID)
    small = alpha
    if factor > 1:
        size = (round(alpha.shape[1] / factor), round(alpha.shape[0] / factor))
        small = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    small_box = (
        int(box[0] / factor),
        int(box[1] / factor),
        max(int(box[0] / factor) + 1, round(box[2] / factor)),
        max(int(box[1] / factor) + 1, round(box[3] / factor)),
    )
    layer = _layers(small, small_box, spec)
    if factor > 1:
        layer = cv2.resize(layer, (alpha.shape[1], alpha.shape[0]), interpolation=cv2.INTER_LINEAR)
    return layer * _window(alpha.shape, box, spec.reach)


def _layers(alpha: np.ndarray, box: Box, spec: ShadowSpec) -> np.ndarray:
    height = max(1, box[3] - box[1])
    mask = alpha.astype(np.float32) / 255.0
    layer = np.zeros_like(mask)
    if spec.contact > 0:
        layer = _contact(mask, box, spec) * spec.contact
    if spec.cast > 0:
        cast = _cast(mask, box, spec, height) * spec.cast
        layer = 1 - (1 - layer) * (1 - cast)  # two shadows darken like two filters
    return layer


def _contact(mask: np.ndarray, box: Box, spec: ShadowSpec) -> np.ndarray:
    """The footprint: where the bottom of the product touches the floor, spread and softened.

    A tight dark core plus a wider faint one (occlusion), both under the product's base.
    """
    left, top, right, bottom = box
    height, width = bottom - top, right - left
    band = max(2, round(0.03 * height))
    footprint = mask[max(top, bottom - band) : bottom].max(axis=0)  # per column, 0..1
    grow = max(1, round(spec.spread * width))
    footprint = cv2.dilate(footprint[None, :], np.ones((1, 2 * grow + 1), np.uint8))[0]
    rows = np.arange(mask.shape[0], dtype=np.float32)[:, None]
    core_sigma = 1.0 + 0.012 * height * (0.5 + spec.softness)
    wide_sigma = 3.0 * core_sigma
    core = np.exp(-0.5 * ((rows - bottom + 0.3 * core_sigma) / core_sigma) ** 2)
    wide = np.exp(-0.5 * ((rows - bottom) / wide_sigma) ** 2)
    core_x = cv2.GaussianBlur(footprint[None, :], (0, 0), core_sigma)[0]
    wide_x = cv2.GaussianBlur(footprint[None, :], (0, 0), wide_sigma)[0]
    return np.clip(core * core_x[None, :] + 0.45 * wide * wide_x[None, :], 0, 1)


def _projection(box: Box, spec: ShadowSpec) -> np.ndarray:
    """The affine map taking each product pixel to where its shadow falls on the floor: a
    point h above the floor moves h * length along `direction` (0 = right, 90 = away from
    the camera, 270 = towards it), the away part foreshortened."""
    floor = float(box[3])
    angle = math.radians(spec.direction)
    shift = spec.length * math.cos(angle)
    rise = spec.length * math.sin(angle) * _FORESHORTEN  # screen px up per px of height
    # x' = x + shift * (floor - y);  y' = floor - rise * (floor - y)
    return np.array([[1.0, -shift, shift * floor], [0.0, rise, floor * (1 - rise)]], np.float32)


def _cast(mask: np.ndarray, box: Box, spec: ShadowSpec, height: int) -> np.ndarray:
    """The silhouette projected on the floor, blurred more and fainter the farther a point
    is from the floor (a real shadow's penumbra widens with distance)."""
    size = (mask.shape[1], mask.shape[0])
    matrix = _projection(box, spec)
    rows = np.arange(mask.shape[0], dtype=np.float32)
    above = np.clip((box[3] - rows) / height, 0, 1)[:, None] * mask  # 0 at floor, 1 at top
    shadow = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR)
    far = cv2.warpAffine(above, matrix, size, flags=cv2.INTER_LINEAR)
    near_sigma = max(1.0, 0.006 * height)
    far_sigma = near_sigma + spec.softness * 0.09 * height
    sharp = cv2.GaussianBlur(shadow, (0, 0), near_sigma)
    soft = cv2.GaussianBlur(shadow, (0, 0), far_sigma)
    distance = cv2.GaussianBlur(far, (0, 0), far_sigma) / np.maximum(soft, 1e-3)
    t = np.clip(distance, 0, 1)
    return (sharp * (1 - t) + soft * t) * (1 - 0.6 * t)


def _window(shape: tuple[int, ...], box: Box, reach: float) -> np.ndarray:
    """1 inside the product box grown by `reach` of its longer side, fading to exactly 0 at
    that distance (the last 40 % of the way), so nothing lands in a slot's margin."""
    left, top, right, bottom = box
    limit = max(1.0, reach * max(right - left, bottom - top))
    fade = 0.4 * limit

    def along(n: int, low: int, high: int) -> np.ndarray:
        at = np.arange(n, dtype=np.float32)
        outside = np.maximum(np.maximum(low - at, at - high), 0)
        return np.clip((limit - outside) / fade, 0, 1)

    return np.minimum.outer(along(shape[0], top, bottom), along(shape[1], left, right))


def floor_layers(
    rgb: np.ndarray, alpha: np.ndarray, box: Box, spec: ShadowSpec
) -> tuple[np.ndarray, np.ndarray | None]:
    """The shadow's opacity, and the reflection as RGBA float (None when not wanted)."""
    opacity = shadow_opacity(alpha, box, spec)
    if spec.reflection <= 0:
        return opacity, None
    floor = float(box[3])
    flip = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 2 * floor - 1]], np.float32)
    size = (alpha.shape[1], alpha.shape[0])
    mirrored = cv2.warpAffine(np.dstack([rgb, alpha]).astype(np.float32), flip, size)
    rows = np.arange(alpha.shape[0], dtype=np.float32)
    depth = 0.35 * max(1, box[3] - box[1])
    fade = np.clip(1 - (rows - floor) / depth, 0, 1) * (rows >= floor)
    mirrored[..., 3] *= fade[:, None] * spec.reflection / 255.0
    mirrored[..., 3] *= _window(alpha.shape, box, spec.reach)
    return opacity, mirrored


def apply_shadow(
    image: np.ndarray,
    alpha: np.ndarray,
    box: Box,
    spec: ShadowSpec,
    colour: tuple[int, int, int] = (38, 34, 30),
) -> np.ndarray:
    """`image` (the product already composited over its background) with the product's
    shadow and reflection added under it: only the background share (1 - alpha) of each
    pixel changes, so the product is never shaded and pixels outside `reach` keep their
    exact value (pure white stays 255).

    A shadow filters the light the floor gets: at full opacity the floor's colour is
    multiplied by `colour` / 255 (on white, exactly `colour`), so a textured floor keeps its
    texture inside the shadow."""
    x0, y0, x1, y1 = _reach_region(image.shape, box, spec.reach)  # nothing changes outside
    local = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
    out = image.copy()
    part, part_alpha = out[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    opacity, reflection = floor_layers(part, part_alpha, local, spec)
    # Only pixels a layer reaches, behind the product, change: the rest keep their exact
    # value, so only those are computed (a 2048 px master's shadow covers a fraction of it).
    behind = 1.0 - part_alpha.astype(np.float32) / 255.0
    reached = opacity > 0 if reflection is None else (opacity > 0) | (reflection[..., 3] > 0)
    changed = reached & (behind > 0)
    part[changed] = _shaded(part[changed], behind[changed][:, None], opacity[changed], colour,
                            None if reflection is None else reflection[changed])  # fmt: skip
    return out


def _shaded(
    pixels: np.ndarray,
    behind: np.ndarray,
    opacity: np.ndarray,
    colour: tuple[int, int, int],
    reflection: np.ndarray | None,
) -> np.ndarray:
    """Nx3 pixels with the reflection (Nx4, RGBA float) and the shadow laid over their
    `behind` (background) share."""
    base = pixels.astype(np.float32)
    if reflection is not None:
        base = base + behind * reflection[:, 3:4] * (reflection[:, :3] - base)
    filtered = 1.0 - np.asarray(colour, np.float32) / 255.0
    shaded = base * (1.0 - behind * opacity[:, None] * filtered)
    return np.clip(np.rint(shaded), 0, 255).astype(np.uint8)


def _reach_region(shape: tuple[int, ...], box: Box, reach: float) -> Box:
    """The product box grown by `reach` of its longer side (and a pixel), in the image."""
    pad = math.ceil(reach * max(box[2] - box[0], box[3] - box[1])) + 1
    return (
        max(0, box[0] - pad),
        max(0, box[1] - pad),
        min(shape[1], box[2] + pad),
        min(shape[0], box[3] + pad),
    )
