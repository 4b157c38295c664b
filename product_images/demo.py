"""Demo material: a drawn sample catalog, and a static HTML contact sheet of a run.

The sample photos are drawn here (Pillow + numpy), never copied, so the demo ships no
third-party images and every photo is reproducible from a seed. Each sample is built to
exercise one thing the pipeline must handle: a hole in a mug handle, a soft cast shadow,
a gradient backdrop, a coloured wall, a ready cut-out, an EXIF-rotated JPEG, a textured
paper backdrop, and one photo the cut-out should refuse to trust.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from product_images.errors import ProductImagesError
from product_images.manifest import CheckResult, Manifest, MasterRecord, OutputRecord
from product_images.store import Store, read_url

__all__ = ["SAMPLE_KINDS", "make_sample_catalog", "write_contact_sheet"]

RGB = tuple[float, float, float]
Draw = Callable[[ImageDraw.ImageDraw], None]
FileKind = Literal["jpeg", "png-alpha", "jpeg-exif6"]

_ORIENTATION_TAG = 0x0112
# Light from the upper left and slightly in front, like a softbox: the one light every
# sample shares, so the set looks like one shoot.


def _unit(x: float, y: float, z: float) -> tuple[float, float, float]:
    # Plain floats, not numpy scalars: those would promote every float32 image to float64.
    n = math.sqrt(x * x + y * y + z * z)
    return x / n, y / n, z / n


_LIGHT = _unit(-0.45, -0.55, 0.70)
_HALF = _unit(_LIGHT[0], _LIGHT[1], _LIGHT[2] + 1)


# --------------------------------------------------------------------------- canvas


@dataclass
class _Mask:
    """Coverage (0..1) of one drawn shape, kept only for its bounding box: cheap to shade."""

    left: int
    top: int
    a: np.ndarray  # float32 (h, w)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel x as a row (1, w) and pixel y as a column (h, 1), for broadcasting."""
        h, w = self.a.shape
        xs = np.arange(w, dtype=np.float32)[None, :] + self.left
        ys = np.arange(h, dtype=np.float32)[:, None] + self.top
        return xs, ys


class _Photo:
    """An RGB float picture, the product's coverage, and product coordinates.

    Product coordinates: one unit is the photo's shorter side, origin at the centre, y down,
    so each drawing reads the same whatever the photo's size.
    """

    def __init__(self, background: np.ndarray) -> None:
        self.rgb = background
        self.height, self.width = background.shape[:2]
        self.unit = min(self.width, self.height)
        self.alpha = np.zeros((self.height, self.width), np.float32)

    def pt(self, u: float, v: float) -> tuple[float, float]:
        return self.width / 2 + u * self.unit, self.height / 2 + v * self.unit

    def box(self, u0: float, v0: float, u1: float, v1: float) -> tuple[float, ...]:
        return (*self.pt(u0, v0), *self.pt(u1, v1))

    def px(self, d: float) -> int:
        return max(1, round(d * self.unit))

    def mask(self, draw: Draw, soften: float = 0.7) -> _Mask:
        """Rasterise `draw` and soften its edge (Pillow draws aliased shapes)."""
        layer = Image.new("L", (self.width, self.height), 0)
        draw(ImageDraw.Draw(layer))
        box = layer.getbbox()
        if box is None:
            return _Mask(0, 0, np.zeros((1, 1), np.float32))
        pad = math.ceil(3 * soften) + 1
        left, top = max(0, box[0] - pad), max(0, box[1] - pad)
        right, bottom = min(self.width, box[2] + pad), min(self.height, box[3] + pad)
        a = np.asarray(layer.crop((left, top, right, bottom)), np.float32) / 255
        return _Mask(left, top, _blur(a, soften))

    def rect(self, u0: float, v0: float, u1: float, v1: float, radius: float = 0.0) -> _Mask:
        """A (rounded) rectangle in product coordinates."""
        box, r = self.box(u0, v0, u1, v1), self.px(radius)
        if radius:
            return self.mask(lambda d: d.rounded_rectangle(box, radius=r, fill=255))
        return self.mask(lambda d: d.rectangle(box, fill=255))

    def oval(self, u0: float, v0: float, u1: float, v1: float, soften: float = 0.7) -> _Mask:
        box = self.box(u0, v0, u1, v1)
        return self.mask(lambda d: d.ellipse(box, fill=255), soften)

    def polygon(self, points: Iterable[tuple[float, float]], soften: float = 0.7) -> _Mask:
        corners = [self.pt(u, v) for u, v in points]
        return self.mask(lambda d: d.polygon(corners, fill=255), soften)

    def paint(self, mask: _Mask, colour: np.ndarray | RGB, opacity: float = 1.0) -> None:
        """Lay `colour` over the photo through `mask`; what is painted is product (alpha)."""
        h, w = mask.a.shape
        region = self.rgb[mask.top : mask.top + h, mask.left : mask.left + w]
        a = mask.a[..., None] * np.float32(opacity)
        region += (np.asarray(colour, np.float32) - region) * a
        cover = self.alpha[mask.top : mask.top + h, mask.left : mask.left + w]
        np.maximum(cover, mask.a * opacity, out=cover)

    def punch(self, mask: _Mask) -> None:
        """Make a hole through the product (transparent in the cut-out PNG)."""
        h, w = mask.a.shape
        self.alpha[mask.top : mask.top + h, mask.left : mask.left + w] *= 1 - mask.a

    def darken(self, mask: _Mask, strength: float) -> None:
        """A shadow: darkens the backdrop without becoming part of the product."""
        h, w = mask.a.shape
        region = self.rgb[mask.top : mask.top + h, mask.left : mask.left + w]
        region *= 1 - strength * mask.a[..., None]

    def shadow(self, box: tuple[float, float, float, float], blur: float, strength: float) -> None:
        """A soft contact shadow: a blurred ellipse in product coordinates."""
        self.darken(self.oval(*box, soften=self.px(blur)), strength)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones (shadows) run at a lower resolution, which looks the same."""
    factor = int(sigma // 4)
    if factor < 2:
        return cv2.GaussianBlur(a, (0, 0), sigma)
    h, w = a.shape
    small = cv2.resize(a, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------- shading


def _lit(
    base: RGB, nx: np.ndarray, ny: np.ndarray, gloss: float = 0.3, shine: float = 24.0
) -> np.ndarray:
    """Lambert + Blinn shading of a surface given the x/y parts of its unit normal."""
    nx, ny = np.broadcast_arrays(nx, ny)
    nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0, 1))
    diffuse = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0, 1)
    spec = np.clip(nx * _HALF[0] + ny * _HALF[1] + nz * _HALF[2], 0, 1) ** shine * gloss
    colour = np.asarray(base, np.float32) * (0.35 + 0.72 * diffuse)[..., None]
    return (colour + spec[..., None]).astype(np.float32)


def _across(mask: _Mask, photo: _Photo, cx: float, half: float) -> np.ndarray:
    """-1..1 across a vertical cylinder of centre `cx` and half width `half` (units)."""
    xs, _ = mask.grid()
    x0, _ = photo.pt(cx, 0)
    return np.clip((xs - x0) / (half * photo.unit), -0.999, 0.999) + np.zeros_like(mask.a)


def _pillow(mask: _Mask, bulge: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Normals of a soft padded shape (bag, cushion): flat middle, rounded edges."""
    h, w = mask.a.shape
    u = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    v = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    return bulge * u**3 + 0 * v, bulge * v**3 + 0 * u


def _noise(rng: np.random.Generator, h: int, w: int, amount: float) -> np.ndarray:
    """Fine luminance noise (h, w, 1): a tiled random patch, far cheaper than full-size noise
    and indistinguishable at these strengths."""
    tile = rng.standard_normal((96, 96, 1), dtype=np.float32) * np.float32(amount)
    return np.tile(tile, (h // 96 + 1, w // 96 + 1, 1))[:h, :w]


def _grain(rng: np.random.Generator, mask: _Mask, amount: float) -> np.ndarray:
    """Surfaces in photos are never perfectly smooth."""
    h, w = mask.a.shape
    return _noise(rng, h, w, amount)


def _weave(mask: _Mask, period: float, amount: float) -> np.ndarray:
    """A woven-fabric pattern, visible in a detail crop."""
    xs, ys = mask.grid()
    k = 2 * math.pi / period
    return (amount * np.sin(xs * k) * np.sin(ys * k))[..., None]


def _blotches(
    rng: np.random.Generator, shape: tuple[int, int], cells: int, amount: float
) -> np.ndarray:
    """Low-frequency noise (paper fibre, leather): a small random field blown up smoothly."""
    h, w = shape
    small = rng.standard_normal((max(2, h // cells), max(2, w // cells)), dtype=np.float32)
    return (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * amount)[..., None]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: the same glyphs on every machine, so output stays deterministic.
    return ImageFont.load_default(size=max(8, size))


def _smooth(points: list[tuple[float, float]], steps: int = 8) -> list[tuple[float, float]]:
    """A closed Catmull-Rom curve through `points`, for organic outlines (shoe, sole)."""
    out, n = [], len(points)
    for i in range(n):
        p0, p1, p2, p3 = (np.array(points[(i + k) % n]) for k in (-1, 0, 1, 2))
        for t in np.linspace(0, 1, steps, endpoint=False):
            q = 0.5 * (
                (2 * p1)
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
            out.append((float(q[0]), float(q[1])))
    return out


def _lathe(
    photo: _Photo,
    cx: float,
    profile: list[tuple[float, float]],
    base: RGB,
    tilt: float = 0.2,
    gloss: float = 0.3,
    shine: float = 24.0,
) -> tuple[_Mask, np.ndarray]:
    """A turned object (bottle, mug, lamp shade): profile = [(v, half width)], top to bottom.

    The bottom is an ellipse (seen from slightly above); returns the mask and its shading.
    """
    right = [photo.pt(cx + hw, v) for v, hw in profile]
    left = [photo.pt(cx - hw, v) for v, hw in reversed(profile)]
    v_end, hw_end = profile[-1]
    bottom = photo.box(cx - hw_end, v_end - tilt * hw_end, cx + hw_end, v_end + tilt * hw_end)

    def draw(d: ImageDraw.ImageDraw) -> None:
        d.polygon(right + left, fill=255)
        d.ellipse(bottom, fill=255)

    mask = photo.mask(draw)
    xs, ys = mask.grid()
    rows = np.array([photo.pt(0, v)[1] for v, _ in profile])
    half = np.interp(ys[:, 0], rows, [hw * photo.unit for _, hw in profile])[:, None]
    u = np.clip((xs - photo.pt(cx, 0)[0]) / half, -0.999, 0.999)
    return mask, _lit(base, u, 0 * u, gloss, shine)


# --------------------------------------------------------------------------- backdrops


def _vertical(h: int, w: int, top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    rgb = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.ascontiguousarray(np.broadcast_to(rgb, (h, w, 3)))


def _vignette(rgb: np.ndarray, amount: float) -> np.ndarray:
    """Studio light falls off towards the corners."""
    h, w = rgb.shape[:2]
    y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    rgb *= (1 - amount * (x * x + y * y) / 2)[..., None]
    return rgb


def _backdrop(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return np.ones((h, w, 3), np.float32)
    if kind == "offwhite":
        return _vignette(np.full((h, w, 3), (0.965, 0.955, 0.935), np.float32), 0.06)
    if kind == "grey":
        return _vignette(_vertical(h, w, (0.94, 0.94, 0.95), (0.80, 0.80, 0.82)), 0.05)
    if kind == "sweep":  # cyclorama: warm wall curving into a lighter floor
        return _vertical(h, w, (0.86, 0.84, 0.81), (0.95, 0.94, 0.92))
    if kind == "wall":
        return _wall(h, w, rng)
    if kind == "paper":
        base = np.full((h, w, 3), (0.935, 0.925, 0.895), np.float32)
        base += _blotches(rng, (h, w), 40, 0.012) + _blotches(rng, (h, w), 3, 0.008)
        return base
    if kind == "transparent":  # colour under alpha 0; white keeps viewers that drop alpha sane
        return np.ones((h, w, 3), np.float32)
    if kind == "busy":
        return _busy(h, w, rng)
    raise ValueError(f"unknown backdrop {kind!r}")


def _wall(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A painted studio wall meeting a floor, with a soft light spot behind the product."""
    walls = [(0.47, 0.62, 0.66), (0.80, 0.63, 0.55), (0.60, 0.66, 0.52), (0.55, 0.57, 0.72)]
    wall = np.asarray(walls[int(rng.integers(len(walls)))], np.float32)
    t = np.clip((np.arange(h, dtype=np.float32) / h - 0.78) / 0.05, 0, 1)[:, None, None]
    floor = np.minimum(wall * 1.12 + 0.05, 1)
    rgb = wall * (1 - t) + floor * t + np.zeros((h, w, 3), np.float32)
    y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    rgb *= (0.9 + 0.14 * np.exp(-(x * x + (y + 0.2) ** 2) * 1.5))[..., None]
    return rgb


def _busy(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """The hard case: bold diagonal stripes and clutter, nothing like a studio backdrop."""
    # Pastel, not saturated: the border is still far too varied to trust (colour spread ~20,
    # "cluttered"), yet a dark product stays separable, so the run ends in needs_review
    # rather than "no product found".
    colours = np.array(
        [
            (0.95, 0.78, 0.74),
            (0.98, 0.93, 0.75),
            (0.74, 0.86, 0.93),
            (0.97, 0.97, 0.95),
            (0.78, 0.90, 0.80),
        ],
        np.float32,
    )
    # Stripe index depends on x + y only: one line of indices, viewed as a sheared 2-D grid.
    line = ((np.arange(h + w) // max(8, w // 26)) % len(colours)).astype(np.uint8)
    rgb = colours[np.lib.stride_tricks.sliding_window_view(line, w)[:h]]
    picture = Image.fromarray((rgb * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    # Clutter (notes, coasters, toys) in mid to light colours: it crowds the border and adds
    # stray objects, but stays lighter than the product, which must remain findable.
    for _ in range(24):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.02, 0.07) * w
        fill = tuple(int(c) for c in rng.integers(110, 240, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r * 0.7, x + r, y + r * 0.7), fill=fill)
    return np.asarray(picture, np.float32) / 255


# --------------------------------------------------------------------------- products


def _pick(rng: np.random.Generator, options: list[RGB]) -> RGB:
    return options[int(rng.integers(len(options)))]


def _scale(colour: RGB, k: float) -> RGB:
    return colour[0] * k, colour[1] * k, colour[2] * k


def _mug(p: _Photo, rng: np.random.Generator) -> None:
    glaze = _pick(rng, [(0.78, 0.30, 0.22), (0.20, 0.27, 0.45), (0.16, 0.50, 0.55)])
    cx, half, top, bottom = -0.05, 0.19, -0.17, 0.21
    p.shadow((cx - 0.2, bottom - 0.02, cx + 0.34, bottom + 0.07), 0.02, 0.35)
    # The handle is a ring: its hole must stay background in the cut-out.
    hx0, hy0, hx1, hy1, width = cx + 0.11, -0.11, cx + 0.33, 0.13, 0.05
    handle = p.mask(lambda d: d.ellipse(p.box(hx0, hy0, hx1, hy1), outline=255, width=p.px(width)))
    p.paint(handle, _ring_shading(p, handle, (hx0, hy0, hx1, hy1), width, glaze))
    body, shade = _lathe(
        p, cx, [(top, half), (bottom, half)], glaze, tilt=0.22, gloss=0.45, shine=40
    )
    p.paint(body, shade + _grain(rng, body, 0.012))
    rim = p.oval(cx - half, top - 0.042, cx + half, top + 0.042)
    p.paint(rim, np.minimum(np.asarray(glaze) * 1.35 + 0.08, 1))
    inner = p.oval(cx - half + 0.014, top - 0.033, cx + half - 0.014, top + 0.033)
    _, ys = inner.grid()
    depth = (ys - ys.min()) / max(1.0, float(np.ptp(ys)))
    p.paint(inner, np.asarray(glaze, np.float32) * (0.35 + 0.4 * depth[..., None]))
    text = p.mask(
        lambda d: d.multiline_text(
            p.pt(cx - 0.02, 0.02),
            "good\nmorning",
            fill=255,
            font=_font(p.px(0.055)),
            anchor="mm",
            align="center",
            spacing=p.px(0.01),
        )
    )
    u = _across(text, p, cx, half)
    p.paint(text, _lit((0.97, 0.95, 0.9), u, 0 * u, 0.4, 40))


def _ring_shading(
    p: _Photo, mask: _Mask, box: tuple[float, float, float, float], width: float, base: RGB
) -> np.ndarray:
    """A torus-like tube: the normal turns across the ring's width."""
    xs, ys = mask.grid()
    (x0, y0), (x1, y1) = p.pt(box[0], box[1]), p.pt(box[2], box[3])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax, ay = (x1 - x0) / 2 - p.px(width) / 2, (y1 - y0) / 2 - p.px(width) / 2
    dx, dy = (xs - cx) / ax, (ys - cy) / ay
    r = np.sqrt(dx * dx + dy * dy) + 1e-6
    t = np.clip((r - 1) * ax / (p.px(width) / 2), -0.999, 0.999)
    return _lit(base, t * dx / r, t * dy / r, 0.45, 40)


def _bottle(p: _Photo, rng: np.random.Generator) -> None:
    paint = _pick(rng, [(0.45, 0.62, 0.50), (0.17, 0.25, 0.42), (0.90, 0.45, 0.38)])
    profile = [
        (-0.40, 0.085),
        (-0.35, 0.09),
        (-0.30, 0.115),
        (-0.25, 0.138),
        (-0.20, 0.15),
        (0.58, 0.15),
    ]
    # Lit from the front left onto a wall close behind: a soft shadow falls to the right.
    ghost = [(0.07 + hw, v + 0.02) for v, hw in profile]
    ghost += [(0.07 - hw, v + 0.02) for v, hw in reversed(profile)]
    p.darken(p.polygon(ghost, p.px(0.035)), 0.22)
    p.shadow((-0.2, 0.55, 0.24, 0.65), 0.015, 0.4)
    body, shade = _lathe(p, 0, profile, paint, tilt=0.2, gloss=0.25, shine=20)
    p.paint(body, shade + _grain(rng, body, 0.015))
    loop = p.mask(
        lambda d: d.ellipse(p.box(-0.05, -0.62, 0.05, -0.5), outline=255, width=p.px(0.018))
    )
    p.paint(loop, _ring_shading(p, loop, (-0.05, -0.62, 0.05, -0.5), 0.018, (0.2, 0.2, 0.21)))
    cap, cap_shade = _lathe(
        p, 0, [(-0.52, 0.088), (-0.40, 0.09)], (0.16, 0.16, 0.17), tilt=0.2, gloss=0.5, shine=30
    )
    xs, _ = cap.grid()
    ridges = 0.035 * np.sin(xs * 2 * math.pi / p.px(0.012))[..., None]
    p.paint(cap, cap_shade + ridges)
    top = p.oval(-0.088, -0.538, 0.088, -0.502)
    p.paint(top, (0.30, 0.30, 0.32))
    _bottle_label(p, rng, paint)


def _bottle_label(p: _Photo, rng: np.random.Generator, ink: RGB) -> None:
    """A wrap-around label: text and stripes shaded like the bottle, for the detail crop.

    Its paper is nearly the backdrop's colour on purpose: a real and common case (white
    label, white studio) where a colour-model cut-out can punch a hole through the product.
    """
    label = p.rect(-0.15, 0.06, 0.15, 0.38)
    u = _across(label, p, 0, 0.15)
    p.paint(label, _lit((0.96, 0.95, 0.92), u, 0 * u, 0.2, 20) + _grain(rng, label, 0.01))
    for v in (0.09, 0.345):
        stripe = p.rect(-0.15, v, 0.15, v + 0.012)
        u = _across(stripe, p, 0, 0.15)
        p.paint(stripe, _lit(ink, u, 0 * u, 0.2, 20))

    def words(d: ImageDraw.ImageDraw) -> None:
        d.text(p.pt(0, 0.19), "HYDRA", fill=255, font=_font(p.px(0.075)), anchor="mm")
        d.text(
            p.pt(0, 0.27),
            "750 ml  ·  keeps cold 24 h",
            fill=255,
            font=_font(p.px(0.022)),
            anchor="mm",
        )

    text = p.mask(words, 0.5)
    u = _across(text, p, 0, 0.15)
    p.paint(text, _lit(ink, u, 0 * u, 0.2, 20))


def _sneaker(p: _Photo, rng: np.random.Generator) -> None:
    upper_colour = _pick(rng, [(0.18, 0.22, 0.36), (0.85, 0.85, 0.86), (0.55, 0.12, 0.14)])
    accent = _pick(rng, [(0.95, 0.50, 0.15), (0.20, 0.70, 0.60), (0.95, 0.80, 0.20)])
    p.shadow((-0.58, 0.19, 0.58, 0.30), 0.02, 0.45)
    tongue = _smooth(
        [(-0.08, -0.09), (-0.01, -0.23), (0.06, -0.27), (0.13, -0.25), (0.15, -0.16), (0.04, -0.11)]
    )
    _panel(p, rng, tongue, _scale(upper_colour, 1.15), texture=0.03)
    upper = _smooth(
        [
            (-0.52, 0.15),
            (-0.55, 0.10),
            (-0.52, 0.04),
            (-0.42, -0.01),
            (-0.28, -0.04),
            (-0.14, -0.09),
            (-0.02, -0.15),
            (0.08, -0.165),
            (0.16, -0.15),
            (0.30, -0.14),
            (0.42, -0.17),
            (0.50, -0.22),
            (0.555, -0.16),
            (0.545, 0.02),
            (0.50, 0.14),
        ]
    )
    _panel(p, rng, upper, upper_colour, texture=0.035)
    _sneaker_details(p, rng, upper_colour, accent)
    sole = _smooth(
        [
            (-0.55, 0.17),
            (-0.50, 0.13),
            (-0.2, 0.15),
            (0.2, 0.14),
            (0.52, 0.11),
            (0.57, 0.17),
            (0.54, 0.235),
            (0.3, 0.25),
            (-0.3, 0.25),
            (-0.52, 0.235),
        ]
    )
    sole_mask = p.polygon(sole)
    _, ys = sole_mask.grid()
    band = np.abs(ys - p.pt(0, 0.205)[1]) < p.px(0.007)
    # A gum sole: an off-white one vanishes into the light backdrop for the colour-model
    # cut-out (it drops the sole and reports two objects at confidence 0.6, not flagged).
    colour = np.where(
        band[..., None], np.asarray(accent, np.float32), np.asarray((0.80, 0.62, 0.40), np.float32)
    )
    tread = (ys > p.pt(0, 0.232)[1])[..., None]
    colour = np.where(tread, np.float32(0.25), colour)
    nx, ny = _pillow(sole_mask, 0.5)
    p.paint(
        sole_mask,
        colour * (_lit((1, 1, 1), nx * 0.3, ny) * 0.9 + 0.12) + _grain(rng, sole_mask, 0.01),
    )


def _panel(
    p: _Photo,
    rng: np.random.Generator,
    outline: list[tuple[float, float]],
    colour: RGB,
    texture: float = 0.0,
) -> _Mask:
    """A padded piece of a shoe: soft shading, mesh texture, grain."""
    mask = p.polygon(outline)
    nx, ny = _pillow(mask, 0.7)
    shading = _lit(colour, nx * 0.5, ny, 0.15, 12) + _grain(rng, mask, 0.015)
    p.paint(mask, shading + _weave(mask, 5, texture) if texture else shading)
    return mask


def _sneaker_details(p: _Photo, rng: np.random.Generator, colour: RGB, accent: RGB) -> None:
    lining = _smooth(
        [
            (0.15, -0.152),
            (0.30, -0.142),
            (0.42, -0.172),
            (0.50, -0.215),
            (0.43, -0.15),
            (0.30, -0.12),
            (0.2, -0.13),
        ],
        6,
    )
    p.paint(p.polygon(lining), (0.13, 0.12, 0.12))
    _panel(
        p,
        rng,
        [
            (0.38, -0.12),
            (0.47, -0.15),
            (0.53, -0.14),
            (0.535, 0.02),
            (0.49, 0.13),
            (0.36, 0.13),
            (0.33, 0.0),
        ],
        _scale(colour, 0.8),
    )  # heel counter
    _panel(
        p,
        rng,
        _smooth(
            [
                (-0.54, 0.10),
                (-0.515, 0.05),
                (-0.42, 0.005),
                (-0.36, 0.03),
                (-0.38, 0.14),
                (-0.52, 0.15),
            ],
            6,
        ),
        _scale(colour, 0.9),
    )  # toe cap
    swoosh = _smooth(
        [(-0.30, 0.11), (0.0, 0.02), (0.36, -0.09), (0.46, -0.08), (0.10, 0.07), (-0.25, 0.13)], 10
    )
    _panel(p, rng, swoosh, accent)

    def laces(d: ImageDraw.ImageDraw) -> None:
        for i in range(5):
            u, v = -0.25 + i * 0.055, -0.04 - i * 0.027
            d.line(
                [p.pt(u - 0.028, v - 0.032), p.pt(u + 0.034, v + 0.026)],
                fill=255,
                width=p.px(0.013),
            )

    def holes(d: ImageDraw.ImageDraw) -> None:
        for i in range(5):
            u, v = -0.25 + i * 0.055 + 0.04, -0.04 - i * 0.027 + 0.032
            d.ellipse(p.box(u - 0.009, v - 0.009, u + 0.009, v + 0.009), fill=255)
        for i in range(4):  # perforations on the toe cap
            for j in range(3):
                u, v = -0.5 + i * 0.03 + j * 0.012, 0.06 + j * 0.025
                d.ellipse(p.box(u - 0.004, v - 0.004, u + 0.004, v + 0.004), fill=255)

    p.paint(p.mask(holes, 0.5), (0.1, 0.1, 0.1))
    p.paint(p.mask(laces), (0.97, 0.97, 0.96))

    def stitches(d: ImageDraw.ImageDraw) -> None:
        for i in range(40):
            u = -0.47 + i * 0.024
            v = 0.118 - 0.03 * max(0.0, u)
            d.line([p.pt(u, v), p.pt(u + 0.012, v)], fill=255, width=p.px(0.003))

    p.paint(p.mask(stitches, 0.5), (0.9, 0.9, 0.88))


def _backpack(p: _Photo, rng: np.random.Generator) -> None:
    fabric = _pick(rng, [(0.80, 0.55, 0.18), (0.70, 0.20, 0.18), (0.25, 0.30, 0.26)])
    dark = _scale(fabric, 0.55)
    p.shadow((-0.32, 0.41, 0.32, 0.5), 0.025, 0.45)
    for side in (-1, 1):
        strap = p.rect(side * 0.27 - 0.04, -0.26, side * 0.27 + 0.04, 0.30, radius=0.03)
        p.paint(strap, np.asarray(dark, np.float32) + _weave(strap, 4, 0.03))
    loop = p.mask(
        lambda d: d.ellipse(p.box(-0.085, -0.47, 0.085, -0.33), outline=255, width=p.px(0.026))
    )
    p.paint(loop, _ring_shading(p, loop, (-0.085, -0.47, 0.085, -0.33), 0.026, dark))
    body = p.rect(-0.26, -0.40, 0.26, 0.44, radius=0.13)
    nx, ny = _pillow(body)
    p.paint(body, _lit(fabric, nx, ny, 0.06, 8) + _weave(body, 6, 0.03) + _grain(rng, body, 0.018))
    zip_line = p.mask(
        lambda d: d.arc(p.box(-0.22, -0.37, 0.22, 0.12), 195, 345, fill=255, width=p.px(0.009))
    )
    p.paint(zip_line, (0.12, 0.12, 0.12))
    pocket = p.rect(-0.2, 0.03, 0.2, 0.39, radius=0.07)
    nx, ny = _pillow(pocket)
    p.paint(
        pocket,
        _lit(_scale(fabric, 0.88), nx, ny, 0.06, 8)
        + _weave(pocket, 6, 0.03)
        + _grain(rng, pocket, 0.018),
    )
    seam = p.mask(
        lambda d: d.rounded_rectangle(
            p.box(-0.2, 0.03, 0.2, 0.39), radius=p.px(0.07), outline=255, width=p.px(0.006)
        )
    )
    p.paint(seam, dark)
    _backpack_hardware(p, rng)


def _backpack_hardware(p: _Photo, rng: np.random.Generator) -> None:
    def zips(d: ImageDraw.ImageDraw) -> None:
        d.line([p.pt(-0.16, 0.075), p.pt(0.16, 0.075)], fill=255, width=p.px(0.008))
        d.rounded_rectangle(p.box(0.1, 0.07, 0.125, 0.13), radius=p.px(0.006), fill=255)
        d.rounded_rectangle(p.box(-0.17, -0.27, -0.145, -0.21), radius=p.px(0.006), fill=255)

    p.paint(p.mask(zips), (0.14, 0.14, 0.15))
    patch = p.rect(-0.075, 0.16, 0.075, 0.24, radius=0.012)
    p.paint(patch, np.asarray((0.45, 0.29, 0.17), np.float32) + _grain(rng, patch, 0.03))
    word = p.mask(
        lambda d: d.text(p.pt(0, 0.2), "TRAIL", fill=255, font=_font(p.px(0.04)), anchor="mm"), 0.5
    )
    p.paint(word, (0.93, 0.86, 0.72))


def _watch(p: _Photo, rng: np.random.Generator) -> None:
    leather = _pick(rng, [(0.45, 0.26, 0.14), (0.12, 0.12, 0.13), (0.55, 0.40, 0.28)])
    dial = _pick(rng, [(0.12, 0.18, 0.32), (0.93, 0.91, 0.85), (0.18, 0.32, 0.24)])
    for v0, v1 in ((-0.42, -0.12), (0.12, 0.42)):
        strap = p.rect(-0.1, v0, 0.1, v1, radius=0.035)
        u = _across(strap, p, 0, 0.1) * 0.6
        texture = _blotches(rng, strap.a.shape, 6, 0.03) + _grain(rng, strap, 0.02)
        p.paint(strap, _lit(leather, u, 0 * u, 0.15, 10) + texture)
    _watch_stitches(p)
    disc = p.oval(-0.2, -0.2, 0.2, 0.2)
    xs, ys = disc.grid()
    cx, cy = p.pt(0, 0)
    nx, ny = (xs - cx) / p.px(0.2) * 0.95, (ys - cy) / p.px(0.2) * 0.95
    crown = p.rect(0.185, -0.03, 0.235, 0.03, radius=0.01)
    across = np.linspace(-0.9, 0.9, crown.a.shape[0], dtype=np.float32)[:, None]
    p.paint(crown, _lit((0.7, 0.7, 0.72), 0 * crown.a, across + 0 * crown.a, 0.6))
    p.paint(disc, _lit((0.72, 0.73, 0.76), nx, ny, 0.9, 30))
    _watch_dial(p, rng, dial)


def _watch_stitches(p: _Photo) -> None:
    def draw(d: ImageDraw.ImageDraw) -> None:
        for u in (-0.08, 0.08):
            for v0, v1 in ((-0.40, -0.15), (0.15, 0.40)):
                for v in np.arange(v0, v1, 0.02):
                    d.line([p.pt(u, v), p.pt(u, v + 0.01)], fill=255, width=p.px(0.004))

    p.paint(p.mask(draw, 0.5), (0.88, 0.82, 0.70))

    def holes(d: ImageDraw.ImageDraw) -> None:
        for v in (0.25, 0.3, 0.35):
            d.ellipse(p.box(-0.012, v - 0.012, 0.012, v + 0.012), fill=255)

    # Buckle holes go right through the strap: transparency inside the cut-out.
    p.punch(p.mask(holes, 0.5))


def _watch_dial(p: _Photo, rng: np.random.Generator, dial: RGB) -> None:
    face = p.oval(-0.165, -0.165, 0.165, 0.165)
    xs, ys = face.grid()
    cx, cy = p.pt(0, 0)
    angle = np.arctan2(ys - cy, xs - cx)
    sunburst = 0.05 * np.sin(angle * 24)[..., None]
    p.paint(face, np.asarray(dial, np.float32) * 0.9 + sunburst + _grain(rng, face, 0.008))
    ink = (0.95, 0.95, 0.93) if sum(dial) < 1.5 else (0.1, 0.1, 0.12)

    def marks(d: ImageDraw.ImageDraw) -> None:
        for hour in range(12):
            a = hour * math.pi / 6
            r0 = 0.125 if hour % 3 else 0.11
            d.line(
                [
                    p.pt(r0 * math.sin(a), -r0 * math.cos(a)),
                    p.pt(0.152 * math.sin(a), -0.152 * math.cos(a)),
                ],
                fill=255,
                width=p.px(0.006 if hour % 3 else 0.011),
            )
        d.text(p.pt(0, 0.07), "AUTOMATIC", fill=255, font=_font(p.px(0.018)), anchor="mm")
        d.text(p.pt(0, -0.07), "FIELD", fill=255, font=_font(p.px(0.024)), anchor="mm")
        for a, r, width in ((math.radians(305), 0.08, 0.013), (math.radians(60), 0.12, 0.009)):
            d.line(
                [p.pt(0, 0), p.pt(r * math.sin(a), -r * math.cos(a))], fill=255, width=p.px(width)
            )

    p.paint(p.mask(marks, 0.6), ink)
    second = p.mask(
        lambda d: d.line([p.pt(0.02, 0.03), p.pt(-0.09, -0.12)], fill=255, width=p.px(0.004))
    )
    p.paint(second, (0.85, 0.15, 0.12))
    pin = p.oval(-0.01, -0.01, 0.01, 0.01)
    p.paint(pin, (0.8, 0.8, 0.82))
    glare = p.oval(-0.14, -0.15, 0.02, -0.03, soften=p.px(0.02))
    p.paint(glare, (1.0, 1.0, 1.0), opacity=0.12)  # reflection on the crystal


def _box(p: _Photo, rng: np.random.Generator) -> None:
    kraft = np.asarray((0.76, 0.60, 0.42), np.float32)
    # Cast shadow on the floor to the right of the box (light from the upper left).
    p.darken(p.polygon([(0.16, 0.42), (0.30, 0.32), (0.44, 0.33), (0.32, 0.45)], p.px(0.03)), 0.3)
    p.shadow((-0.32, 0.38, 0.34, 0.47), 0.015, 0.4)
    faces = [  # (outline, brightness): lit from the upper left
        ([(-0.28, -0.12), (-0.14, -0.22), (0.30, -0.22), (0.16, -0.12)], 1.12),
        ([(-0.28, -0.12), (0.16, -0.12), (0.16, 0.42), (-0.28, 0.42)], 0.97),
        ([(0.16, -0.12), (0.30, -0.22), (0.30, 0.32), (0.16, 0.42)], 0.72),
    ]
    for outline, light in faces:
        face = p.polygon(outline, 0.6)
        fibre = _blotches(rng, face.a.shape, 30, 0.02) + _grain(rng, face, 0.02)
        p.paint(face, kraft * light + fibre)
    tape = p.polygon([(-0.05, -0.12), (0.09, -0.22), (0.13, -0.22), (-0.01, -0.12)])
    p.paint(tape, (0.70, 0.55, 0.36))
    edges = p.mask(
        lambda d: d.line(
            [p.pt(-0.28, -0.12), p.pt(0.16, -0.12), p.pt(0.30, -0.22)], fill=255, width=p.px(0.003)
        ),
        0.5,
    )
    p.paint(edges, (0.92, 0.82, 0.66))
    _box_label(p, rng)


def _box_label(p: _Photo, rng: np.random.Generator) -> None:
    """A printed sticker: text, stripes and a barcode, the detail a close-up should show."""
    sticker = p.rect(-0.22, -0.02, 0.10, 0.34)
    p.paint(sticker, np.asarray((0.96, 0.95, 0.92), np.float32) + _grain(rng, sticker, 0.008))
    header = p.rect(-0.22, -0.02, 0.10, 0.05)
    p.paint(header, (0.15, 0.35, 0.28))
    for i, colour in enumerate([(0.85, 0.55, 0.15), (0.75, 0.25, 0.2), (0.15, 0.35, 0.28)]):
        stripe = p.rect(-0.22, 0.16 + i * 0.014, 0.10, 0.168 + i * 0.014)
        p.paint(stripe, colour)
    head = p.mask(
        lambda d: d.text(
            p.pt(-0.06, 0.015), "ACME TEA CO.", fill=255, font=_font(p.px(0.032)), anchor="mm"
        ),
        0.5,
    )
    p.paint(head, (0.97, 0.96, 0.9))

    def words(d: ImageDraw.ImageDraw) -> None:
        d.text(p.pt(-0.06, 0.09), "ORGANIC", fill=255, font=_font(p.px(0.042)), anchor="mm")
        d.text(
            p.pt(-0.06, 0.135), "green tea · 20 bags", fill=255, font=_font(p.px(0.02)), anchor="mm"
        )
        d.text(p.pt(-0.2, 0.315), "NET WT 40 g", fill=255, font=_font(p.px(0.015)), anchor="lm")
        x = -0.02
        for width in rng.choice([0.002, 0.003, 0.005], size=30):
            d.rectangle(p.box(x, 0.235, x + float(width), 0.3), fill=255)
            x += float(width) + 0.0025

    p.paint(p.mask(words, 0.5), (0.12, 0.12, 0.13))


def _lamp(p: _Photo, rng: np.random.Generator) -> None:
    metal = _pick(rng, [(0.14, 0.14, 0.15), (0.55, 0.78, 0.70), (0.85, 0.65, 0.20)])
    # Small and off-centre on purpose: framing must find and re-centre the product.
    cx = -0.14
    p.shadow((cx - 0.15, 0.45, cx + 0.17, 0.52), 0.015, 0.4)
    base, shade = _lathe(p, cx, [(0.45, 0.13), (0.48, 0.13)], metal, tilt=0.28, gloss=0.5)
    p.paint(base, shade)
    cap = p.oval(cx - 0.13, 0.45 - 0.036, cx + 0.13, 0.45 + 0.036)
    p.paint(cap, np.minimum(np.asarray(metal) * 1.3 + 0.06, 1))
    joints = [(cx, 0.44), (cx + 0.09, 0.02), (0.22, -0.25)]

    def arm(d: ImageDraw.ImageDraw) -> None:
        d.line([p.pt(*q) for q in joints], fill=255, width=p.px(0.02), joint="curve")
        for u, v in joints[1:]:
            d.ellipse(p.box(u - 0.022, v - 0.022, u + 0.022, v + 0.022), fill=255)

    arm_mask = p.mask(arm)
    p.paint(arm_mask, np.asarray(metal, np.float32) * 0.9 + _grain(rng, arm_mask, 0.01))
    shade_mask, shade = _lathe(
        p,
        0.22,
        [(-0.3, 0.035), (-0.26, 0.055), (-0.09, 0.16)],
        metal,
        tilt=0.3,
        gloss=0.35,
        shine=18,
    )
    p.paint(shade_mask, shade + _grain(rng, shade_mask, 0.01))
    glow = p.oval(0.22 - 0.14, -0.09 - 0.03, 0.22 + 0.14, -0.09 + 0.04)  # lit bulb
    p.paint(glow, (1.0, 0.96, 0.82))


def _headphones(p: _Photo, rng: np.random.Generator) -> None:
    # Dark shells only: the cut-out should find the product here and flag the scene, not
    # lose a white product in a pale pattern (that would end as "no product found").
    shell = _pick(rng, [(0.12, 0.12, 0.13), (0.22, 0.26, 0.38), (0.38, 0.12, 0.14)])
    band = p.mask(
        lambda d: d.arc(p.box(-0.37, -0.45, 0.37, 0.52), 180, 360, fill=255, width=p.px(0.06))
    )
    p.paint(band, _ring_shading(p, band, (-0.37, -0.45, 0.37, 0.52), 0.06, shell))
    pad = p.mask(
        lambda d: d.arc(p.box(-0.31, -0.39, 0.31, 0.46), 205, 335, fill=255, width=p.px(0.03))
    )
    p.paint(pad, np.asarray((0.2, 0.2, 0.21), np.float32) + _weave(pad, 4, 0.04))
    for side in (-1, 1):
        cx = side * 0.34
        slider = p.rect(cx - 0.015, 0.03, cx + 0.015, 0.17)
        p.paint(slider, (0.7, 0.71, 0.73))
        cushion = p.oval(cx - 0.1 - side * 0.05, 0.1, cx + 0.1 - side * 0.05, 0.46)
        nx, ny = _pillow(cushion, 0.9)
        p.paint(cushion, _lit((0.16, 0.16, 0.17), nx, ny, 0.1) + _grain(rng, cushion, 0.03))
        cup = p.oval(cx - 0.1, 0.08, cx + 0.1, 0.44)
        nx, ny = _pillow(cup, 0.95)
        p.paint(cup, _lit(shell, nx, ny, 0.5, 30) + _grain(rng, cup, 0.01))


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class _Sample:
    kind: str
    name: str
    category: str
    size: tuple[int, int]  # upright width, height
    backdrop: str
    file: FileKind
    draw: Callable[[_Photo, np.random.Generator], None]


# What each sample exercises is in its comment; the order is the catalog order.
_SAMPLES = (
    # Pure white studio, contact shadow, a handle whose hole must stay background.
    _Sample("mug", "Stoneware mug, 350 ml", "Kitchen", (1200, 1200), "white", "jpeg", _mug),
    # Off-white with a soft wall shadow; a near-white label; a carry loop (another hole).
    _Sample(
        "bottle", "Insulated bottle, 750 ml", "Outdoor", (900, 1400), "offwhite", "jpeg", _bottle
    ),
    # Light grey gradient (the background model must span light to dark); wide landscape.
    _Sample("sneaker", "Everyday runner", "Shoes", (1600, 1100), "grey", "jpeg", _sneaker),
    # Coloured wall meeting a floor: two background colours, not white at all.
    _Sample("backpack", "Canvas daypack, 20 l", "Bags", (1100, 1400), "wall", "jpeg", _backpack),
    # A ready cut-out: RGBA PNG whose alpha must be trusted (buckle holes are transparent).
    _Sample(
        "watch",
        "Automatic field watch",
        "Watches",
        (1000, 1000),
        "transparent",
        "png-alpha",
        _watch,
    ),
    # Paper texture backdrop; stored sideways with EXIF orientation 6.
    _Sample(
        "teabox", "Organic green tea, 20 bags", "Grocery", (1000, 1300), "paper", "jpeg-exif6", _box
    ),
    # Warm sweep; a thin, small, off-centre product that framing must re-centre.
    _Sample("lamp", "Desk lamp", "Home", (1050, 1350), "sweep", "jpeg", _lamp),
    # The hard case: striped, cluttered backdrop; should end in needs_review.
    _Sample(
        "headphones", "Over-ear headphones", "Audio", (1400, 1000), "busy", "jpeg", _headphones
    ),
)

#: The kinds of sample, in catalog order; a catalog longer than this repeats them.
SAMPLE_KINDS = tuple(s.kind for s in _SAMPLES)


def _render(sample: _Sample, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The drawn photo as uint8 RGB, and the product coverage as uint8 alpha."""
    width, height = sample.size
    photo = _Photo(_backdrop(sample.backdrop, height, width, rng))
    sample.draw(photo, rng)
    # A camera's sensor noise over everything, so flat backdrops are not synthetic-flat.
    rgb = photo.rgb
    rgb *= 255
    rgb += 0.5
    if sample.backdrop not in ("white", "transparent"):
        rgb += _noise(rng, height, width, 1.5)
    np.clip(rgb, 0, 255, out=rgb)
    return rgb.astype(np.uint8), (np.clip(photo.alpha, 0, 1) * 255 + 0.5).astype(np.uint8)


def _encode(sample: _Sample, rgb: np.ndarray, alpha: np.ndarray) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if sample.file == "png-alpha":
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buffer, "PNG", compress_level=3)
        return buffer.getvalue(), "png"
    image = Image.fromarray(rgb, "RGB")
    if sample.file == "jpeg-exif6":
        # Stored the way a phone held sideways stores it: pixels rotated, a tag saying
        # "rotate 90° clockwise to view". Readers that ignore the tag see it on its side.
        exif = Image.Exif()
        exif[_ORIENTATION_TAG] = 6
        image.transpose(Image.Transpose.ROTATE_90).save(
            buffer, "JPEG", quality=90, exif=exif.tobytes()
        )
    else:
        image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), "jpg"


def make_sample_catalog(folder: Path, count: int = 8, seed: int = 7) -> Path:
    """Draw `count` product photos into `folder` with a catalog.csv; returns the CSV path.

    Deterministic: the same seed gives the same bytes. Past the eight kinds, kinds repeat
    with other colours.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        sample = _SAMPLES[index % len(_SAMPLES)]
        rng = np.random.default_rng([seed, index])
        data, ext = _encode(sample, *_render(sample, rng))
        sku = f"demo-{index + 1:02d}-{sample.kind}"
        (folder / f"{sku}.{ext}").write_bytes(data)
        rows.append(
            {"sku": sku, "source": f"{sku}.{ext}", "name": sample.name, "category": sample.category}
        )
    path = folder / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["sku", "source", "name", "category"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- contact sheet

_CSS = """
:root { --fg:#1d232b; --muted:#66707c; --line:#e3e6ea; --ok:#1d7f45; --bad:#b42318; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; color:var(--fg);
       background:#f5f6f8; }
header { padding:24px 32px 8px; }
h1 { margin:0 0 4px; font-size:24px; }
.stats, .muted { color:var(--muted); }
nav { padding:0 32px 16px; display:flex; flex-wrap:wrap; gap:6px; }
nav a { padding:2px 8px; border-radius:10px; background:#fff; border:1px solid var(--line);
        color:var(--fg); text-decoration:none; font-size:12px; }
nav a.review { border-color:#f0b429; background:#fff8e6; }
nav a.failed { border-color:var(--bad); }
section.product { margin:0 32px 28px; padding:20px 24px; background:#fff; border-radius:10px;
                  border:1px solid var(--line); }
section.product h2 { margin:0 0 4px; font-size:18px; }
.banner { margin:12px 0; padding:10px 14px; border-radius:8px; background:#fff4d6;
          border:1px solid #f0b429; }
.banner strong { color:#8a5a00; }
.banner ul, .notes { margin:4px 0 0; padding-left:20px; }
h3 { margin:18px 0 8px; font-size:13px; text-transform:uppercase; letter-spacing:.06em;
     color:var(--muted); }
h3 .muted { text-transform:none; letter-spacing:0; font-weight:normal; }
.path { display:block; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(210px,1fr)); gap:14px; }
figure { margin:0; padding:8px; border:1px solid var(--line); border-radius:8px;
         background:#fff; }
figure.fail { border-color:var(--bad); }
.frame { display:flex; align-items:center; justify-content:center; height:190px;
         border-radius:4px; overflow:hidden;
         background:conic-gradient(#eceef1 25%,#fff 0 50%,#eceef1 0 75%,#fff 0) 0 0/16px 16px; }
.frame img { max-width:100%; max-height:100%; object-fit:contain; display:block; }
.frame .missing { color:var(--muted); font-size:12px; padding:8px; text-align:center; }
figcaption { margin-top:6px; font-size:12px; }
figcaption b { font-size:13px; }
.badges { margin-top:4px; display:flex; flex-wrap:wrap; gap:4px; }
.badge { font-size:11px; font-weight:600; padding:1px 6px; border-radius:4px; color:#fff;
         cursor:help; }
.badge.pass { background:var(--ok); }
.badge.fail { background:var(--bad); }
details { margin-top:4px; font-size:11px; }
table { border-collapse:collapse; width:100%; }
td, th { text-align:left; padding:2px 4px; border-top:1px solid var(--line);
         vertical-align:top; word-break:break-word; }
tr.fail td { color:var(--bad); }
"""


# The order a person reads a product in: the plain cut-out first, then the staged ones.
_VARIANT_ORDER = {"white": 0, "scene": 1, "detail": 2}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _safe_name(sku: str) -> str:
    """A file name for any SKU: SKUs in a manifest are not guaranteed to be path-safe."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", sku).strip("._")[:60] or "product"
    return f"{slug}-{hashlib.sha256(sku.encode()).hexdigest()[:8]}"


def _image_url(store: Store, key: str, root: Path) -> str:
    """How the page refers to a stored image: relative for local files, else the link."""
    link = store.link(key)
    if not link.startswith("file:"):
        return link  # presigned or public URL: usable as it is
    from product_images.store import local_path

    try:
        relative = os.path.relpath(local_path(link), root.resolve())
    except ValueError:  # another drive (Windows): only the absolute URL can work
        return link
    # A relative path keeps the sheet working when the folder is moved or zipped together.
    return quote(Path(relative).as_posix())


def _source_thumbnail(manifest: Manifest, root: Path) -> str | None:
    """Copy the source photo next to the page as a small upright thumbnail.

    Sources may live anywhere (another disk, a bucket), so the page must not point at them.
    """
    try:
        with Image.open(io.BytesIO(read_url(manifest.source.key))) as opened:
            image = ImageOps.exif_transpose(opened)  # thumbnails show the photo upright
        image.thumbnail((640, 640))
    except (ProductImagesError, OSError, ValueError, Image.DecompressionBombError):
        return None  # an unreadable source must not cost the whole sheet
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    name = f"sources/{_safe_name(manifest.sku)}.{'png' if alpha else 'jpg'}"
    (root / "sources").mkdir(parents=True, exist_ok=True)
    if alpha:
        image.convert("RGBA").save(root / name, "PNG")
    else:
        image.convert("RGB").save(root / name, "JPEG", quality=85)
    return quote(name)


def _picture(url: str | None, alt: str, caption: str, fail: bool = False) -> str:
    inner = (
        f'<a href="{_e(url)}"><img src="{_e(url)}" alt="{_e(alt)}" loading="lazy"></a>'
        if url
        else '<div class="missing">source not readable</div>'
    )
    css = ' class="fail"' if fail else ""
    return (
        f'<figure{css}><div class="frame">{inner}</div><figcaption>{caption}</figcaption></figure>'
    )


def _badges(checks: Iterable[CheckResult]) -> str:
    checks = list(checks)
    badges = "".join(
        f'<span class="badge {"pass" if c.passed else "fail"}" '
        f'title="{_e(f"{c.rule}: measured {c.measured}; expected {c.expected}")}">'
        f"{'PASS' if c.passed else 'FAIL'} {_e(c.rule)}</span>"
        for c in checks
    )
    rows = "".join(
        f'<tr class="{"pass" if c.passed else "fail"}"><td>{_e(c.rule)}</td>'
        f"<td>{_e(c.measured)}</td><td>{_e(c.expected)}</td></tr>"
        for c in checks
    )
    table = (
        f"<details><summary>checks</summary><table><tr><th>rule</th><th>measured</th>"
        f"<th>expected</th></tr>{rows}</table></details>"
        if checks
        else ""
    )
    return f'<div class="badges">{badges}</div>{table}'


def _human_bytes(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def _master_figure(store: Store, record: MasterRecord, root: Path) -> str:
    name = record.variant + (f" · {record.look}" if record.look else "")
    name += f" · alternative #{record.rank + 1}" if record.rank else ""
    caption = (
        f"<b>{_e(name)}</b><br>{record.width}×{record.height} · "
        f"{_e(record.backend)} · confidence {record.confidence:.2f}"
    )
    if record.notes:  # e.g. what a scene shows, where a detail crop comes from
        caption += f"<br><small>{_e(record.notes[0])}</small>"
    return _picture(_image_url(store, record.key, root), record.key, caption)


def _output_figure(store: Store, record: OutputRecord, root: Path) -> str:
    caption = (
        f"<b>{_e(record.slot)}</b> <span class='muted'>({_e(record.variant)})</span><br>"
        f"{record.width}×{record.height} · {_e(record.format.upper())} · "
        f"{_human_bytes(record.bytes)}{_badges(record.checks)}"
    )
    return _picture(_image_url(store, record.key, root), record.key, caption, not record.passed)


def _product_section(store: Store, manifest: Manifest, root: Path) -> str:
    source = manifest.source
    parts = [
        f'<section class="product" id="{_e(_safe_name(manifest.sku))}">',
        f"<h2>{_e(manifest.sku)}</h2>",
        f'<div class="muted">backend {_e(manifest.backend)} · code {_e(manifest.code_version)}'
        f" · {len(manifest.outputs)} outputs · made {manifest.created_at:%Y-%m-%d %H:%M}"
        "</div>",
    ]
    if manifest.needs_review:
        reasons = "".join(
            f"<li><b>{_e(f.step)}</b>: {_e(f.reason)} "
            f"<span class='muted'>(confidence {f.confidence:.2f})</span></li>"
            for f in manifest.needs_review
        )
        parts.append(f'<div class="banner"><strong>⚠ needs review</strong><ul>{reasons}</ul></div>')
    notes = "".join(f"<li>{_e(n)}</li>" for n in source.notes)
    name = source.key.rstrip("/").rsplit("/", 1)[-1]
    caption = (
        f"<b>source</b><br>{source.width}×{source.height} · {_e(source.format)}"
        f"<span class='muted path' title='{_e(source.key)}'>{_e(name)}</span>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
    )
    ordered = sorted(manifest.masters, key=lambda m: (_VARIANT_ORDER.get(m.variant, 9), m.variant))
    masters = "".join(_master_figure(store, m, root) for m in ordered)
    thumbnail = _picture(_source_thumbnail(manifest, root), source.key, caption)
    parts.append(f"<h3>Source and masters</h3><div class='grid'>{thumbnail}{masters}</div>")
    for platform in dict.fromkeys(o.platform for o in manifest.outputs):
        outputs = [o for o in manifest.outputs if o.platform == platform]
        version = manifest.spec_versions.get(platform)
        spec = f" <span class='muted'>spec {_e(version)}</span>" if version else ""
        heading = _e(platform) + spec
        figures = "".join(_output_figure(store, o, root) for o in outputs)
        parts.append(f"<h3>{heading}</h3><div class='grid'>{figures}</div>")
    parts.append("</section>")
    return "".join(parts)


def _nav(manifests: list[Manifest]) -> str:
    links = []
    for m in manifests:
        css = "review" if m.needs_review else ("failed" if not m.all_checks_passed else "")
        links.append(f'<a class="{css}" href="#{_e(_safe_name(m.sku))}">{_e(m.sku)}</a>')
    return f"<nav>{''.join(links)}</nav>"


def write_contact_sheet(
    store: Store, manifests: list[Manifest], path: Path, title: str = "product-images demo"
) -> Path:
    """Write one static HTML page showing every product's source, masters and slots.

    Images stay where the store keeps them (referenced relatively for a local store);
    only source thumbnails are copied, into `sources/` next to the page.
    """
    path = Path(path)
    root = path.parent
    root.mkdir(parents=True, exist_ok=True)
    outputs = sum(len(m.outputs) for m in manifests)
    failing = sum(not o.passed for m in manifests for o in m.outputs)
    review = sum(bool(m.needs_review) for m in manifests)
    stats = (
        f"{len(manifests)} products · {outputs} outputs · {failing} outputs failing a "
        f"check · {review} need review"
    )
    body = "".join(_product_section(store, m, root) for m in manifests)
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><div class="stats">{_e(stats)}</div></header>'
        f"{_nav(manifests)}{body}</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path
