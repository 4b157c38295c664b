"""Rendering every slot of every platform from one set of masters: ours against libvips.

The masters are what the local backend makes of a dev photo (white, scene and detail, stored
as PNG), at 4000x4000 and at 1024x1024. Both sides decode each master once, then frame and
encode all 57 slots of the 18 built-in platforms: the same sizes, JPEG at the slot's quality,
4:2:0 chroma subsampling, the sRGB ICC profile embedded. libvips (pyvips, `pip install
'.[bench]'`) crops, resizes (its default Lanczos 3) and embeds each slot straight from the
master, with its own threads. Ours is what `render_slots` runs before its checks: a master
decoded as `_open_master` does, `frame_slots` on `settings.running.threads` threads,
`SharedEncodings`.
`render_slots` itself (plus a compliance check of every output and the store writes) is
timed too. Each repetition runs both, interleaved; medians of wall and CPU time are printed.

    .venv/bin/python bench/render_speed.py [--sides 4000,1024] [--repeat 5] [--photo PATH]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyvips
from PIL import Image

from product_images.imaging.encode import SharedEncodings
from product_images.imaging.render import frame_slots
from product_images.manifest import MasterRecord
from product_images.pipeline import PreparedProduct, prepare_masters, render_slots
from product_images.request import ProductRequest
from product_images.settings import Settings
from product_images.specs import SlotSpec, load_specs
from product_images.store import LocalStore
from product_images.testing.fixtures.images import ssim
from product_images.wiring import wire

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products" / "images"
DEFAULT_PHOTO = PHOTOS / "a38_duffle-large_magento-derived.jpg"
GOAL = 1.3
Masters = list[tuple[MasterRecord, bytes]]


def _make_masters(photo: Path, side: int, folder: Path) -> tuple[PreparedProduct, LocalStore]:
    """The local backend's masters of `photo` at `side` px, stored in `folder`."""
    store = LocalStore(folder)
    platforms = sorted(load_specs())
    request = ProductRequest(sku="BENCH", source=str(photo), platforms=platforms)
    return prepare_masters(
        request, wire(Settings(store=str(folder), master_side=side), store)
    ), store


def ours(masters: Masters, slots: list[SlotSpec], threads: int) -> list[bytes]:
    """Decode each master once, frame its slots as chains, encode equal images once."""
    out: list[bytes] = []
    with ThreadPoolExecutor(threads) as pool:
        for record, data in masters:
            image = Image.open(io.BytesIO(data))
            image.load()
            image = image.convert("RGB")
            mine = [s for s in slots if s.variant == record.variant]
            encodings = SharedEncodings()
            framed = frame_slots(
                image, record.product_box, mine, lambda call, chains: list(pool.map(call, chains))
            )
            jobs = [(image, slot, encodings) for image, slot in zip(framed, mine, strict=True)]
            out += pool.map(lambda job: job[2].encode(job[0], job[1])[0], jobs)
    return out


def _exact(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """libvips rounds a resize to whole pixels its own way: trim or extend by one."""
    if (image.width, image.height) == (width, height):
        return image
    return image.gravity("north-west", width, height, extend="copy")


def _vips_cover(master: pyvips.Image, box: tuple[int, ...], size: tuple[int, int]) -> pyvips.Image:
    width, height = size
    scale = max(width / master.width, height / master.height)
    crop_w, crop_h = width / scale, height / scale
    left = min(max(0.0, (box[0] + box[2]) / 2 - crop_w / 2), master.width - crop_w)
    top = min(max(0.0, (box[1] + box[3]) / 2 - crop_h / 2), master.height - crop_h)
    x0, y0 = round(left), round(top)
    w, h = min(master.width - x0, round(crop_w)), min(master.height - y0, round(crop_h))
    part = master.crop(x0, y0, w, h).resize(width / w, vscale=height / h)
    return _exact(part, width, height)


def _vips_pad(master: pyvips.Image, box: tuple[int, ...], slot: SlotSpec) -> pyvips.Image:
    width, height = slot.target_size()
    fill = slot.fill or 1.0
    scale = fill * min(width / (box[2] - box[0]), height / (box[3] - box[1]))
    left = (box[0] + box[2]) / 2 - width / scale / 2
    top = (box[1] + box[3]) / 2 - height / scale / 2
    x0, y0 = max(0, round(left)), max(0, round(top))
    x1 = min(master.width, round(left + width / scale))
    y1 = min(master.height, round(top + height / scale))
    ox, oy = max(0, round((x0 - left) * scale)), max(0, round((y0 - top) * scale))
    part_w = max(1, min(width - ox, round((x1 - x0) * scale)))
    part_h = max(1, min(height - oy, round((y1 - y0) * scale)))
    part = master.crop(x0, y0, x1 - x0, y1 - y0)
    part = _exact(part.resize(part_w / (x1 - x0), vscale=part_h / (y1 - y0)), part_w, part_h)
    background = list(slot.background_rgb())
    return part.embed(ox, oy, width, height, extend="background", background=background)


def libvips(masters: Masters, slots: list[SlotSpec]) -> list[bytes]:
    """The reference: each master decoded once into memory, each slot cropped, resized and
    saved from it (no chains, no sharing)."""
    out: list[bytes] = []
    for record, data in masters:
        master = pyvips.Image.new_from_buffer(data, "", access="random").copy_memory()
        for slot in (s for s in slots if s.variant == record.variant):
            box = tuple(record.product_box)
            if slot.fit == "cover":
                framed = _vips_cover(master, box, slot.target_size())
            else:
                framed = _vips_pad(master, box, slot)
            out.append(
                framed.jpegsave_buffer(
                    Q=slot.quality,
                    subsample_mode="on",
                    profile="srgb",
                    keep=pyvips.enums.ForeignKeep.ICC,
                )
            )
    return out


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _similarity(ours_out: list[bytes], reference: list[bytes]) -> tuple[float, float]:
    """Mean and lowest SSIM between our outputs and libvips's (same pictures?)."""
    scores = [
        ssim(Image.open(io.BytesIO(a)), Image.open(io.BytesIO(b)))
        for a, b in zip(ours_out, reference, strict=True)
    ]
    return float(np.mean(scores)), min(scores)


def _bench_side(photo: Path, side: int, repeat: int, threads: int) -> None:
    slots = [s for p in load_specs().values() for s in p.slots]
    with tempfile.TemporaryDirectory() as tmp:
        prepared, store = _make_masters(photo, side, Path(tmp))
        masters = [(m, store.get(m.key)) for m in prepared.masters]
        order = {m.variant: i for i, (m, _) in enumerate(masters)}
        slots.sort(key=lambda s: order[s.variant])  # both sides emit outputs in this order
        settings = Settings(store=tmp, threads=threads)
        render_slots(prepared, wire(settings, store))  # warm-up; drops the in-process master cache
        runs: dict[str, list[tuple[float, float]]] = {"ours": [], "libvips": [], "render": []}
        for _ in range(repeat):
            runs["ours"].append(_timed(lambda: ours(masters, slots, threads)))
            runs["libvips"].append(_timed(lambda: libvips(masters, slots)))
            runs["render"].append(_timed(lambda: render_slots(prepared, wire(settings, store))))
        mine, reference = ours(masters, slots, threads), libvips(masters, slots)
    _report(side, slots, runs, _similarity(mine, reference))


def _report(
    side: int,
    slots: list[SlotSpec],
    runs: dict[str, list[tuple[float, float]]],
    similarity: tuple[float, float],
) -> None:
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in runs.items()
    }
    megapixels = sum(s.target_size()[0] * s.target_size()[1] for s in slots) / 1e6
    print(
        f"\n{side}x{side} masters (white, scene, detail) -> {len(slots)} slots, "
        f"{megapixels:.0f} MP of JPEG"
    )
    for name, label in (
        ("ours", "ours (decode, frame_slots, encode)"),
        ("libvips", "libvips (decode, crop/resize/embed, jpegsave)"),
        ("render", "render_slots (ours + check every output + store)"),
    ):
        wall, cpu = med[name]
        print(f"  {label:50s} wall {wall * 1000:6.0f} ms   cpu {cpu * 1000:6.0f} ms")
    wall_ratio = med["ours"][0] / med["libvips"][0]
    cpu_ratio = med["ours"][1] / med["libvips"][1]
    verdict = "met" if max(wall_ratio, cpu_ratio) <= GOAL else "NOT met"
    print(
        f"  ratio ours/libvips: wall {wall_ratio:.2f}x, cpu {cpu_ratio:.2f}x   "
        f"goal <= {GOAL}x -> {verdict}"
    )
    print(
        f"  same pictures? SSIM ours vs libvips: mean {similarity[0]:.4f}, "
        f"lowest {similarity[1]:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="4000,1024", help="Master sides, comma-separated.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--threads", type=int, default=Settings().running.threads)
    args = parser.parse_args()
    print(
        f"photo {args.photo.name}; ours on {args.threads} threads, libvips "
        f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} with its own; "
        f"median of {args.repeat} runs"
    )
    for side in (int(s) for s in args.sides.split(",")):
        _bench_side(args.photo, side, args.repeat, args.threads)


if __name__ == "__main__":
    main()
