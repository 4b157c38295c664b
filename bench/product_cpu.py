"""CPU time per product, local backend, whole product, against the floor.

A product is what the inline engine runs (`run_product` with a LocalStore in a temporary
folder): load, segment, white/scene/detail masters, every slot of every platform (57), the
check of each, the store and the manifest. The floor, measured in the same process on the
same product: decoding the source once, and encoding every output once with the same
encoder at the same settings (each slot with `encode_for_slot` from our own output's pixels;
each master with `encode_master`). Ratios are printed against the floor with the masters
and against the slots-only floor. Photos: the dev set (../shared/testdata/products/images)
and large ones: the dev set's 36 MP photo, and a dev photo upscaled to 12, 24 and 36 MP.

    .venv/bin/python bench/product_cpu.py [--set dev,large] [--platforms all] [--threads N]
    .venv/bin/python bench/product_cpu.py --profile PHOTO    # where the time goes (pyinstrument)
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from product_images.imaging.encode import encode_for_slot, encode_master
from product_images.manifest import Manifest
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.specs import load_specs
from product_images.store import LocalStore
from product_images.wiring import wire

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products" / "images"
UPSCALED_FROM = "a07_running-shoe_vendure.jpg"
LARGE_NATIVE = "a38_duffle-large_magento-derived.jpg"
GOAL = 3.0  # issue 13 (it was 4x for issue 7)


@dataclass
class Measured:
    name: str
    megapixels: float
    cpu: float
    wall: float
    floor_slots: float  # decode once + encode each slot once
    floor_masters: float  # encode each master once

    @property
    def floor(self) -> float:
        return self.floor_slots + self.floor_masters


def _large_photos(folder: Path) -> list[Path]:
    """The dev set's 36 MP photo and a dev photo upscaled to 12, 24 and 36 MP (JPEG q92)."""
    small = Image.open(PHOTOS / UPSCALED_FROM).convert("RGB")
    made = []
    for megapixels in (12, 24, 36):
        side = round((megapixels * 1e6) ** 0.5)
        path = folder / f"{Path(UPSCALED_FROM).stem}-{megapixels}mp.jpg"
        small.resize((side, side), Image.Resampling.LANCZOS).save(path, quality=92)
        made.append(path)
    return [*made, PHOTOS / LARGE_NATIVE]


def _floor(photo: Path, manifest: Manifest, store: LocalStore) -> tuple[float, float]:
    """CPU seconds of (decode the source once + encode each slot once, encode each master)."""
    specs = load_specs()
    data = photo.read_bytes()
    start = time.process_time()
    Image.open(io.BytesIO(data)).load()
    slots = time.process_time() - start
    for output in manifest.outputs:
        image = Image.open(io.BytesIO(store.get(output.key))).convert("RGB")
        start = time.process_time()
        encode_for_slot(image, specs[output.platform].slot(output.slot))
        slots += time.process_time() - start
    masters = 0.0
    for master in manifest.masters:
        image = Image.open(io.BytesIO(store.get(master.key))).convert("RGB")
        start = time.process_time()
        encode_master(image)
        masters += time.process_time() - start
    return slots, masters


def _measure(
    photo: Path, platforms: list[str], settings: Settings, store: LocalStore
) -> Measured | None:
    # force: the warm-up and the profile make a photo twice; an unchanged product is skipped.
    request = ProductRequest(
        sku=photo.stem.split("_")[0], source=str(photo), platforms=platforms, force=True
    )
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_product(request, wire(settings, store))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if result.status != "done":
        print(f"{photo.name[:40]:40s} {result.status} ({result.reason}): {result.message}")
        return None
    manifest = Manifest.model_validate_json(store.get(result.manifest_key or ""))
    with Image.open(photo) as image:
        megapixels = image.width * image.height / 1e6
    return Measured(photo.name, megapixels, cpu, wall, *_floor(photo, manifest, store))


def _line(m: Measured) -> str:
    return (
        f"{m.name[:40]:40s} {m.megapixels:5.1f} MP  cpu {m.cpu:5.2f} s  wall {m.wall:5.2f} s  "
        f"floor {m.floor:5.2f} s ({m.floor_slots:4.2f} slots)  "
        f"ratio {m.cpu / m.floor:4.1f}x ({m.cpu / m.floor_slots:4.1f}x slots only)"
    )


def _summary(label: str, measured: list[Measured]) -> None:
    ratios = [m.cpu / m.floor for m in measured]
    slots_only = [m.cpu / m.floor_slots for m in measured]
    verdict = "met" if statistics.median(ratios) <= GOAL else "NOT met"
    cpu, floor = (
        statistics.median(m.cpu for m in measured),
        statistics.median(m.floor for m in measured),
    )
    print(
        f"{label}: {len(measured)} products, median cpu {cpu:.2f} s/product, "
        f"median floor {floor:.2f} s; "
        f"ratio median {statistics.median(ratios):.1f}x (max {max(ratios):.1f}x), slots-only floor "
        f"median {statistics.median(slots_only):.1f}x; goal <= {GOAL:.0f}x -> {verdict}"
    )


def _profile(photo: Path, platforms: list[str], settings: Settings, store: LocalStore) -> None:
    """pyinstrument's tree of one product, on one thread (it samples only the main thread)."""
    from pyinstrument import Profiler

    settings = settings.model_copy(update={"threads": 1})
    _measure(photo, platforms, settings, store)  # warm: imports, specs, caches
    profiler = Profiler(interval=0.002)
    with profiler:
        _measure(photo, platforms, settings, store)
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="dev,large", help="dev, large or both (comma).")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="The dev photos.")
    parser.add_argument("--platforms", default="all", help="Comma-separated, or all.")
    parser.add_argument("--threads", type=int, default=Settings().running.threads)
    parser.add_argument("--profile", type=Path, help="Profile one product instead.")
    args = parser.parse_args()
    platforms = sorted(load_specs()) if args.platforms == "all" else args.platforms.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        # No pixel worker processes: this process's CPU time must include the cut-out.
        settings = Settings(store=tmp, threads=args.threads, processes=0)
        store = LocalStore(Path(tmp))
        if args.profile:
            _profile(args.profile, platforms, settings, store)
            return
        sets = {"dev": sorted(args.photos.iterdir())} if "dev" in args.set else {}
        if "large" in args.set:
            sets["large"] = _large_photos(Path(tmp))
        _measure(PHOTOS / UPSCALED_FROM, platforms, settings, store)  # warm-up, not counted
        print(f"{len(platforms)} platforms, threads={args.threads}; CPU = time.process_time()")
        for label, photos in sets.items():
            measured = []
            for photo in photos:
                product = _measure(photo, platforms, settings, store)
                if product is not None:
                    measured.append(product)
                    print(_line(product), flush=True)
            _summary(label, measured)


if __name__ == "__main__":
    main()
