"""Masters from a cut-out: the product on pure white, in a studio scene, and a detail crop."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter

from product_images.imaging.check import content_box
from product_images.imaging.edges import edge_colours, edge_pixels

__all__ = [
    "Master",
    "compose_scene",
    "compose_white",
    "crop_detail",
    "decontaminate",
]

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Master:
    """A master image and where the product sits in it."""

    image: Image.Image  # RGB
    product_box: Box
    confidence: float
    reasons: tuple[str, ...] = ()
    generated_by: str | None = None  # model id when a generative model made it
    digital_source_type: str | None = None  # IPTC term (imaging/provenance.py); None: local
    template_sha256: str | None = None  # prompt template it was generated from
    notes: tuple[str, ...] = ()


def decontaminate(
    rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int]
) -> np.ndarray:
    """Remove the old background's colour from semi-transparent edge pixels.

    An edge pixel is I = a*F + (1-a)*B; solving for F stops a grey or coloured fringe from
    the old background showing on white. B is the background's colour next to the pixel
    (a shadow, a gradient), `background` only where none is near. Solving divides by a, so
    faint pixels lean on the product's own colour nearby instead. Only edge pixels are
    touched (a few percent).
    """
    ys, xs = edge_pixels(alpha)
    if len(ys) == 0:
        return rgb
    a = alpha[ys, xs].astype(np.float32)[:, None] / 255.0
    near_f, near_b, f_weight, b_weight = edge_colours(rgb, alpha, ys, xs)
    b = np.where(b_weight[:, None] > 0.05, near_b, np.asarray(background, np.float32))
    solved = (rgb[ys, xs].astype(np.float32) - (1 - a) * b) / a
    lean = np.clip(1 - 2 * a, 0, 1) * (f_weight[:, None] > 0.05)
    out = rgb.copy()
    out[ys, xs] = np.clip(solved * (1 - lean) + near_f * lean, 0, 255).astype(np.uint8)
    return out


def _product_crop(rgb: np.ndarray, alpha: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    left, top, right, bottom = box
    return rgb[top:bottom, left:right], alpha[top:bottom, left:right]


def _scaled(
    rgb: np.ndarray, alpha: np.ndarray, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image]:
    """Product and mask resized together, premultiplied so edges don't pick up dark fringes."""
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA").convert("RGBa")
    scaled = rgba.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0).convert("RGBA")
    return scaled.convert("RGB"), scaled.getchannel("A")


def _fit(box: Box, width: int, height: int) -> tuple[int, int]:
    """Product size that fits inside width x height keeping its aspect."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    scale = min(width / bw, height / bh)
    return max(1, round(bw * scale)), max(1, round(bh * scale))


def compose_white(rgb: np.ndarray, alpha: np.ndarray, box: Box, side: int, fill: float) -> Master:
    """The product centred on a pure #FFFFFF square; background pixels are exactly 255."""
    size = _fit(box, round(side * fill), round(side * fill))
    product, mask = _scaled(*_product_crop(rgb, alpha, box), size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    offset = ((side - size[0]) // 2, (side - size[1]) // 2)
    canvas.paste(product, offset, mask)
    # Frame by what is visibly not white (as the fill rules are checked), not by faint alpha.
    placed = (offset[0], offset[1], offset[0] + size[0], offset[1] + size[1])
    return Master(canvas, content_box(np.asarray(canvas), (255, 255, 255)) or placed, 1.0)


def _backdrop(side: int, tint: tuple[int, int, int]) -> tuple[Image.Image, int]:
    """A seamless studio sweep: a lit wall fading into a floor; returns it and the horizon.

    The shading is separable (a vertical profile times a horizontal vignette), so it is
    built and softened in 1-D: blurring a 2048² float image would take a second.
    """
    horizon = round(side * 0.62)
    y = np.linspace(0.0, 1.0, side, dtype=np.float32)
    wall = 0.97 - 0.10 * y  # light falls off towards the floor
    floor = 0.90 - 0.16 * np.clip((y - 0.62) / 0.38, 0, 1)
    profile = cv2.GaussianBlur(np.where(y < 0.62, wall, floor)[:, None], (1, 0), side / 60)
    x = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    vignette = 1.0 - 0.08 * x**2
    channels = [
        Image.fromarray(np.clip(np.outer(profile.ravel() * c, vignette), 0, 255).astype(np.uint8))
        for c in tint
    ]
    return Image.merge("RGB", channels), horizon


def _studio_tint(rgb: np.ndarray, alpha: np.ndarray) -> tuple[int, int, int]:
    """A pale backdrop colour in harmony with the product's dominant colour."""
    pixels = rgb[alpha > 128]
    mean = pixels.mean(axis=0) if len(pixels) else np.array([200.0, 200.0, 200.0])
    pale = 0.18 * mean + 0.82 * np.array([246.0, 243.0, 238.0])  # warm off-white base
    return tuple(int(v) for v in pale)  # type: ignore[return-value]


def _match_light(
    product: Image.Image, backdrop_mean: np.ndarray, strength: float = 0.12
) -> Image.Image:
    """Pull the product's colour cast a little towards the scene's light."""
    arr = np.asarray(product, np.float32)
    cast = backdrop_mean / max(float(backdrop_mean.mean()), 1.0)
    lit = arr * (1 - strength + strength * cast[None, None, :])
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))


def _contact_shadow(side: int, placed: Box) -> tuple[Image.Image, tuple[int, int]]:
    """A soft dark ellipse where the product meets the floor: an opacity patch and its origin."""
    left, _top, right, bottom = placed
    width = right - left
    sigma = max(2.0, width / 25)
    centre = (round((left + right) / 2), bottom - max(1, width // 60))
    axes = (max(2, round(width * 0.48)), max(2, round(width * 0.06)))
    pad = round(3 * sigma)
    x0, y0 = max(0, centre[0] - axes[0] - pad), max(0, centre[1] - axes[1] - pad)
    x1, y1 = min(side, centre[0] + axes[0] + pad), min(side, centre[1] + axes[1] + pad)
    patch = np.zeros((y1 - y0, x1 - x0), np.float32)  # only the shadow's neighbourhood
    cv2.ellipse(patch, (centre[0] - x0, centre[1] - y0), axes, 0, 0, 360, 0.55, -1)
    patch = cv2.GaussianBlur(patch, (0, 0), sigma)
    return Image.fromarray((patch * 255).astype(np.uint8)), (x0, y0)


def _reflection(product: Image.Image, mask: Image.Image) -> tuple[Image.Image, Image.Image]:
    flipped = product.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    fade = np.linspace(0.22, 0.0, mask.height, dtype=np.float32)[:, None]
    faded = np.asarray(mask.transpose(Image.Transpose.FLIP_TOP_BOTTOM), np.float32) * fade
    return flipped, Image.fromarray(faded.astype(np.uint8))


def compose_scene(
    rgb: np.ndarray,
    alpha: np.ndarray,
    box: Box,
    side: int,
    background: Image.Image | None = None,
    reflection: bool = False,
) -> Master:
    """The product standing on the floor of a studio sweep, or on a supplied background."""
    if background is None:
        scene, horizon = _backdrop(side, _studio_tint(rgb, alpha))
    else:
        scene, horizon = _cover(background.convert("RGB"), side), round(side * 0.62)
    size = _fit(box, round(side * 0.56), round(side * 0.56))
    product, mask = _scaled(*_product_crop(rgb, alpha, box), size)
    light = (
        np.asarray(scene.reduce(32), np.float32).reshape(-1, 3).mean(axis=0)
    )  # a thumbnail's mean is enough
    product = _match_light(product, light)
    floor_y = min(side - round(side * 0.08), max(horizon + size[1] // 3, round(side * 0.80)))
    offset = ((side - size[0]) // 2, floor_y - size[1])
    placed = (offset[0], offset[1], offset[0] + size[0], offset[1] + size[1])
    shadow, origin = _contact_shadow(side, placed)
    scene.paste(Image.new("RGB", shadow.size, (40, 36, 32)), origin, shadow)
    if reflection:
        flipped, faded = _reflection(product, mask)
        scene.paste(flipped, (offset[0], placed[3]), faded)
    scene.paste(product, offset, mask)
    return Master(scene, placed, 1.0)


def _cover(image: Image.Image, side: int) -> Image.Image:
    scale = side / min(image.size)
    size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
    resized = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    return resized.crop((left, top, left + side, top + side))


def _detail_energy(gray: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def _best_window(
    energy: np.ndarray, inside: np.ndarray, window: int
) -> tuple[int, int, float, float]:
    """Top-left of the window with most detail that lies (mostly) inside the product."""
    e = cv2.integral(energy * inside)
    m = cv2.integral(inside.astype(np.float32))
    w = window
    sums = e[w:, w:] - e[:-w, w:] - e[w:, :-w] + e[:-w, :-w]
    cover = (m[w:, w:] - m[:-w, w:] - m[w:, :-w] + m[:-w, :-w]) / (w * w)
    for need in (0.95, 0.8, 0.5):
        score = np.where(cover >= need, sums, -1.0)
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[y, x] > 0:
            return int(x), int(y), float(cover[y, x]), need
    return 0, 0, 0.0, 0.0


def crop_detail(rgb: np.ndarray, alpha: np.ndarray, box: Box, side: int, work: int = 400) -> Master:
    """The most detailed square region inside the product, upscaled to `side`."""
    scale = work / max(rgb.shape[:2])
    scale = min(scale, 1.0)
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    inside = cv2.resize(alpha, (small.shape[1], small.shape[0])) > 200
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    bw, bh = box[2] - box[0], box[3] - box[1]
    window = max(8, round(min(bw, bh) * scale * 0.45))
    if window >= min(small.shape[:2]) or not inside.any():
        return _fallback_detail(rgb, box, side)
    energy = _detail_energy(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    x, y, cover, need = _best_window(energy, inside, window)
    if need == 0.0:
        return _fallback_detail(rgb, box, side)
    full = (
        round(x / scale),
        round(y / scale),
        round((x + window) / scale),
        round((y + window) / scale),
    )
    crop = Image.fromarray(rgb).crop(full)
    # Sharpen at native resolution (cheap, and it sharpens real detail, not resampling blur).
    crop = crop.filter(ImageFilter.UnsharpMask(radius=1.5, percent=60, threshold=2))
    crop = crop.resize((side, side), Image.Resampling.LANCZOS)
    reasons = () if need >= 0.95 else (f"detail crop only {cover:.0%} inside the product",)
    return Master(crop, (0, 0, side, side), 1.0 if need >= 0.95 else 0.7, reasons)


def _fallback_detail(rgb: np.ndarray, box: Box, side: int) -> Master:
    """Too thin or small a product for a detail window: use its centre."""
    left, top, right, bottom = box
    half = max(1, min(right - left, bottom - top) // 2)
    cx, cy = (left + right) // 2, (top + bottom) // 2
    square = (cx - half, cy - half, cx + half, cy + half)
    crop = Image.fromarray(rgb).crop(square).resize((side, side), Image.Resampling.LANCZOS)
    return Master(crop, (0, 0, side, side), 0.5, ("product too thin for a detail crop",))
