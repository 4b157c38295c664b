"""Frame a master for marketplace slots: pad, contain or cover, at each slot's size.

Resampling is OpenCV's (SIMD: 2-20x faster than Pillow's resize from a 4000 px master; see
`_resize`). Slots that show the same framing at different sizes (the 14 square white images
at 0.85 fill, 750 to 2048 px) are made as one chain, largest first: the largest from the
master, each next one from the one before (a few megapixels instead of the whole master),
and equal sizes share one image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import cv2
import numpy as np
from PIL import Image

from product_images.specs import SlotSpec

__all__ = ["Runner", "frame_for_slot", "frame_slots"]

Box = tuple[int, int, int, int]
Size = tuple[int, int]
Chain = list[int]
# How `frame_slots` runs its chains: map a function over them, in order (e.g. on threads).
Runner = Callable[[Callable[[Chain], list[Image.Image]], list[Chain]], list[list[Image.Image]]]

# Under this reduction bicubic beats area averaging (closer to Lanczos), above it the reverse.
_AREA_FROM = 1.6


def frame_for_slot(master: Image.Image, product_box: Box, slot: SlotSpec) -> Image.Image:
    """The master framed to the slot's pixel size and fit rule."""
    return Image.fromarray(_frame(_rgb(master), product_box, slot, slot.target_size()))


def frame_slots(
    master: Image.Image, product_box: Box, slots: Sequence[SlotSpec], run: Runner | None = None
) -> list[Image.Image]:
    """Each slot's framed image, in order; slots of equal framing and size share one image.

    `run` maps over the chains of equal framing (default: one after the other).
    """
    pixels = _rgb(master)
    chains = _chains(slots)

    def frame_chain(chain: Chain) -> list[Image.Image]:
        return _frame_chain(pixels, product_box, [slots[i] for i in chain])

    framed = (run or _one_by_one)(frame_chain, chains)
    out: dict[int, Image.Image] = {}
    for chain, images in zip(chains, framed, strict=True):
        out.update(zip(chain, images, strict=True))
    return [out[i] for i in range(len(slots))]


def _one_by_one(
    call: Callable[[Chain], list[Image.Image]], chains: list[Chain]
) -> list[list[Image.Image]]:
    return [call(chain) for chain in chains]


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _framing(slot: SlotSpec) -> tuple[object, ...]:
    """What decides a slot's picture apart from its pixel size."""
    width, height = slot.target_size()
    aspect = Fraction(width, height)
    if slot.fit == "cover":
        return ("cover", aspect)
    return (slot.fit, aspect, slot.fill if slot.fit == "pad" else 1.0, slot.background)


def _chains(slots: Sequence[SlotSpec]) -> list[Chain]:
    """Indices of `slots` grouped by framing, each group largest first."""
    groups: dict[tuple[object, ...], Chain] = {}
    for index, slot in enumerate(slots):
        groups.setdefault(_framing(slot), []).append(index)
    return [sorted(chain, key=lambda i: -_area(slots[i])) for chain in groups.values()]


def _area(slot: SlotSpec) -> int:
    width, height = slot.target_size()
    return width * height


def _frame_chain(master: np.ndarray, box: Box, slots: list[SlotSpec]) -> list[Image.Image]:
    """One chain's images, largest first: each reduced from the one before, unless that one
    is an enlargement of the master (reducing it again would blur what the master has sharp),
    then framed from the master. Against Lanczos from the master, chained images are as
    close (SSIM) as ones framed from the master; tests/.../test_render.py holds them to it."""
    made: dict[Size, np.ndarray] = {}
    for slot in slots:
        size = slot.target_size()
        if size in made:
            continue
        previous = list(made)[-1] if made else None
        if previous is not None and _scale(master, box, slot, previous) <= 1.0:
            made[size] = _resize(made[previous], size)
        else:
            made[size] = _frame(master, box, slot, size)
    images = {size: Image.fromarray(pixels) for size, pixels in made.items()}
    return [images[slot.target_size()] for slot in slots]


def _frame(master: np.ndarray, box: Box, slot: SlotSpec, size: Size) -> np.ndarray:
    if slot.fit == "cover":
        return _cover(master, box, size)
    return _place(master, *_placing(master, box, slot), size, slot.background_rgb())


def _placing(master: np.ndarray, box: Box, slot: SlotSpec) -> tuple[Box, float]:
    """What `pad` or `contain` puts at which fill of the frame."""
    if slot.fit == "contain":
        return (0, 0, master.shape[1], master.shape[0]), 1.0
    return box, slot.fill or 1.0


def _scale(master: np.ndarray, box: Box, slot: SlotSpec, size: Size) -> float:
    """Pixels of the framed image per master pixel, at `size`."""
    if slot.fit == "cover":
        return max(size[0] / master.shape[1], size[1] / master.shape[0])
    placed, fill = _placing(master, box, slot)
    return fill * min(size[0] / (placed[2] - placed[0]), size[1] / (placed[3] - placed[1]))


def _resize(pixels: np.ndarray, size: Size) -> np.ndarray:
    """Halve (2x2 means: OpenCV's fastest path) while at least twice the size, then area
    averaging from 1.6x down, bicubic below and to enlarge: of OpenCV's filters, those came
    closest to Lanczos (SSIM) at each ratio, at a fraction of Pillow's time."""
    while pixels.shape[1] >= 2 * size[0] and pixels.shape[0] >= 2 * size[1]:
        even_h, even_w = pixels.shape[0] // 2 * 2, pixels.shape[1] // 2 * 2
        half = (even_w // 2, even_h // 2)
        pixels = cv2.resize(pixels[:even_h, :even_w], half, interpolation=cv2.INTER_AREA)
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    ratio = min(pixels.shape[1] / size[0], pixels.shape[0] / size[1])
    area = ratio >= _AREA_FROM
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA if area else cv2.INTER_CUBIC)


def _place(
    master: np.ndarray, box: Box, fill: float, size: Size, background: tuple[int, int, int]
) -> np.ndarray:
    """Scale so `box` spans `fill` of the frame, centre it, pad with the background."""
    width, height = size
    master_h, master_w = master.shape[:2]
    scale = fill * min(width / (box[2] - box[0]), height / (box[3] - box[1]))
    left = (box[0] + box[2]) / 2 - width / scale / 2  # the frame's corner, in master pixels
    top = (box[1] + box[3]) / 2 - height / scale / 2
    # Only the part of the master inside the frame is resampled.
    x0, y0 = max(0, round(left)), max(0, round(top))
    x1, y1 = min(master_w, round(left + width / scale)), min(master_h, round(top + height / scale))
    ox, oy = max(0, round((x0 - left) * scale)), max(0, round((y0 - top) * scale))
    part_w = max(1, min(width - ox, round((x1 - x0) * scale)))
    part_h = max(1, min(height - oy, round((y1 - y0) * scale)))
    part = _resize(master[y0:y1, x0:x1], (part_w, part_h))
    right, bottom = width - ox - part_w, height - oy - part_h
    # One pass that copies and pads; a filled canvas plus a paste is two.
    return cv2.copyMakeBorder(part, oy, bottom, ox, right, cv2.BORDER_CONSTANT, value=background)


def _cover(master: np.ndarray, box: Box, size: Size) -> np.ndarray:
    """Crop the master to the slot's aspect around the product, then scale."""
    width, height = size
    master_h, master_w = master.shape[:2]
    scale = max(width / master_w, height / master_h)
    crop_w, crop_h = width / scale, height / scale
    left = min(max(0.0, (box[0] + box[2]) / 2 - crop_w / 2), master_w - crop_w)
    top = min(max(0.0, (box[1] + box[3]) / 2 - crop_h / 2), master_h - crop_h)
    x0, y0 = round(left), round(top)
    x1, y1 = min(master_w, x0 + round(crop_w)), min(master_h, y0 + round(crop_h))
    return _resize(master[y0:y1, x0:x1], size)
