"""Every built-in marketplace for a folder of photos (or the demo catalog): which outputs fail
their own checks, and a contact sheet of each product's masters to look at by eye.

    .venv/bin/python bench/masters_sheet.py [--photos DIR | --demo] [--out sheet.png]

Each row: the source, the plain white master, the white master with Shopify's shadow
(contact + cast), the scene master and the ranked detail crops.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from product_images.demo import make_sample_catalog
from product_images.manifest import Manifest, MasterRecord
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.specs import load_specs
from product_images.store import LocalStore
from product_images.wiring import wire

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products" / "images"
_TILE = 260


def _rows(photos: Path | None, scratch: Path) -> list[tuple[str, Path, str, str]]:
    """(sku, photo, name, category) for each product."""
    if photos is None:
        catalog = make_sample_catalog(scratch / "demo")
        return [
            (r["sku"], catalog.parent / r["source"], r["name"], r["category"])
            for r in csv.DictReader(catalog.open())
        ]
    manifest = photos.parent / "MANIFEST.csv"
    subjects = {}
    if manifest.exists():
        subjects = {Path(r["file"]).name: r["subject"] for r in csv.DictReader(manifest.open())}
    return [
        (p.stem.split("_")[0], p, subjects.get(p.name, ""), "")
        for p in sorted(photos.iterdir())
        if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}
    ]


def _tiles(store: LocalStore, manifest: Manifest, source: Path) -> list[Image.Image]:
    def opened(record: MasterRecord) -> Image.Image:
        return Image.open(io.BytesIO(store.get(record.key))).convert("RGB")

    shopify = load_specs()["shopify"].slot("main").shadow_key()
    wanted = [("white", "", 0), ("white", shopify, 0), ("scene", "", 0)]
    by_look = {(m.variant, m.look, m.rank): m for m in manifest.masters}
    picked = [by_look[w] for w in wanted if w in by_look]
    picked += sorted(
        (m for m in manifest.masters if m.variant == "detail" and not m.look), key=lambda m: m.rank
    )
    upright = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
    return [upright, *(opened(m) for m in picked)]


def _row(label: str, tiles: list[Image.Image]) -> Image.Image:
    row = Image.new("RGB", (_TILE * 7, _TILE + 18), "white")
    for i, tile in enumerate(tiles[:7]):
        tile.thumbnail((_TILE - 4, _TILE - 4))
        row.paste(tile, (i * _TILE, 18))
    ImageDraw.Draw(row).text((4, 3), label, fill="black")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT)
    parser.add_argument("--demo", action="store_true", help="The demo catalog instead.")
    parser.add_argument("--out", type=Path, default=Path("masters-sheet.png"))
    args = parser.parse_args()
    platforms = sorted(load_specs())
    rows, failures, outputs = [], [], 0
    with tempfile.TemporaryDirectory() as scratch:
        store = LocalStore(Path(scratch) / "store")
        settings = Settings(store=str(store.root))
        for sku, photo, name, category in _rows(None if args.demo else args.photos, Path(scratch)):
            start = time.perf_counter()
            request = ProductRequest(
                sku=sku, source=str(photo), platforms=platforms, name=name, category=category
            )
            result = run_product(request, wire(settings, store))
            if result.status != "done":
                print(f"{sku:10s} {result.status} {result.reason}")
                continue
            manifest = Manifest.model_validate_json(store.get(result.manifest_key or ""))
            bad = [
                f"{o.platform}/{o.slot}: {c.rule} {c.measured} (want {c.expected})"
                for o in manifest.outputs
                for c in o.checks
                if not c.passed
            ]
            outputs += len(manifest.outputs)
            failures += [f"{sku} {line}" for line in bad]
            scene = next((m.notes[0] for m in manifest.masters if m.variant == "scene"), "")
            print(f"{sku:10s} {time.perf_counter() - start:5.1f}s {len(bad)} failed  {scene}")
            rows.append(_row(f"{sku} {name} | {scene}", _tiles(store, manifest, photo)))
    sheet = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * row.height))
    sheet.save(args.out)
    print(
        f"\n{len(rows)} products, {outputs} outputs on {len(platforms)} platforms, "
        f"{len(failures)} failed checks; contact sheet {args.out}"
    )
    for line in failures:
        print(f"  FAIL {line}")


if __name__ == "__main__":
    main()
