"""Masters from a cut-out: the product on pure white, in a studio scene, and a detail crop."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageFilter

from product_images.imaging.check import content_box
from product_images.imaging.details import DetailCandidate, detail_candidates
from product_images.imaging.edges import edge_colours, edge_pixels
from product_images.imaging.floor_shadow import apply_shadow
from product_images.imaging.scenes.stage import stage_product
from product_images.specs import ShadowSpec

__all__ = [
    "Master",
    "compose_scene",
    "compose_white",
    "crop_detail",
    "decontaminate",
    "with_shadow",
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
    # The product's mask on the master's grid (uint8), where a master knows it: shadows
    # are drawn from it.
    alpha: np.ndarray | None = field(default=None, compare=False, repr=False)
    # Other candidates a person may prefer (detail crops), best first.
    alternates: tuple[Master, ...] = ()


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
    full = np.zeros((side, side), np.uint8)
    full[placed[1] : placed[3], placed[0] : placed[2]] = np.asarray(mask)
    box = content_box(np.asarray(canvas), (255, 255, 255)) or placed
    return Master(canvas, box, 1.0, alpha=full)


def with_shadow(master: Master, spec: ShadowSpec) -> Master:
    """The white master with the product's shadow under it. The product box stays the
    product's own, so slots frame and fill by the product, not by its shadow."""
    alpha = master.alpha if master.alpha is not None else np.zeros((1, 1), np.uint8)
    ys, xs = np.nonzero(alpha > 127)
    if len(ys) == 0:
        return replace(master, notes=(*master.notes, "no product mask: shadow left out"))
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    pixels = apply_shadow(np.asarray(master.image), alpha, box, spec)
    return replace(master, image=Image.fromarray(pixels))


def compose_scene(
    rgb: np.ndarray,
    alpha: np.ndarray,
    box: Box,
    side: int,
    background: Image.Image | None = None,
    reflection: bool = False,
    size_cm: float = 25.0,
    background_name: str = "",
) -> Master:
    """The product standing on a surface drawn to suit its colours (wood, stone, linen or a
    paper sweep, at the scale its real size `size_cm` implies), or on a supplied backdrop
    photo; lit like the backdrop, its shadow falling away from the backdrop's light."""
    size = _fit(box, round(side * 0.62), round(side * 0.58))  # the hero, with room around
    product, mask = _scaled(*_product_crop(rgb, alpha, box), size)
    seed = int(np.asarray(product.reduce(8)).sum()) % 9973  # stable per product
    staged = stage_product(
        np.asarray(product),
        np.asarray(mask),
        side,
        size_cm,
        seed,
        background,
        background_name,
        reflection,
    )
    scene = staged.backdrop
    what = "studio shot on a drawn" if scene.kind == "studio" else "on the"
    note = f"scene: {what} {scene.name}"
    return Master(Image.fromarray(staged.image), staged.box, 1.0, notes=(note,))


def crop_detail(
    rgb: np.ndarray,
    alpha: np.ndarray,
    box: Box,
    side: int,
    alternates: int = 2,
    aspect: float = 1.0,
) -> Master:
    """The best detail crop of the product at `aspect` (width / height), at the source's own
    pixels (enlarged only under `_NATIVE_MIN`), the next-best distinct crops as
    `alternates`."""
    found, confidence, reason = detail_candidates(rgb, alpha, box, 1 + alternates, aspect)
    if not found:
        return _fallback_detail(rgb, box, side)
    best, *rest = (_detail_master(rgb, c, side, rank) for rank, c in enumerate(found))
    if confidence < 1.0:
        best = replace(best, confidence=confidence, reasons=(reason,))
    return replace(best, alternates=tuple(rest))


_NATIVE_MIN = 800  # a detail crop whose long side is under this is enlarged to it


def _detail_master(rgb: np.ndarray, found: DetailCandidate, side: int, rank: int) -> Master:
    crop = Image.fromarray(rgb).crop(found.box)
    native = max(crop.size)
    # Sharpen at native resolution (it sharpens real detail, not resampling blur).
    crop = crop.filter(ImageFilter.UnsharpMask(radius=1.5, percent=60, threshold=2))
    out = min(side, max(native, _NATIVE_MIN))
    if out != native:
        k = out / native
        crop = crop.resize(
            (round(crop.width * k), round(crop.height * k)), Image.Resampling.LANCZOS
        )
    notes = [f"detail #{rank + 1}: {native} px of the source at {found.box}"]
    notes += [f"holds {found.marks} whole mark(s) (text, logo, hardware)"] if found.marks else []
    notes += [f"enlarged from {native} px"] if out > native else []
    return Master(crop, (0, 0, crop.width, crop.height), 1.0, notes=tuple(notes))


def _fallback_detail(rgb: np.ndarray, box: Box, side: int) -> Master:
    """Too thin or small a product for a detail window: use its centre."""
    left, top, right, bottom = box
    half = max(1, min(right - left, bottom - top) // 2)
    cx, cy = (left + right) // 2, (top + bottom) // 2
    square = (cx - half, cy - half, cx + half, cy + half)
    crop = Image.fromarray(rgb).crop(square).resize((side, side), Image.Resampling.LANCZOS)
    return Master(crop, (0, 0, side, side), 0.5, ("product too thin for a detail crop",))
