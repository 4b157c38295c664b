"""A contact sheet (PNG) of a store's products, to look at by eye: for every product its source
photo beside a master (white by default), with the cut-out's confidence and review reasons.

    .venv/bin/python bench/contact_sheet.py STORE_DIR OUT.png [--variant white|scene|detail]
        [--photos ../shared/testdata/products/images]

STORE_DIR is a local store, e.g. the `--keep` folder of bench/dev_set.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products" / "images"
TILE = 240
COLUMNS = 4  # products per row (each takes two tiles)
LABEL = 34


def _tile(path: Path | None) -> Image.Image:
    canvas = Image.new("RGB", (TILE, TILE), (200, 40, 160))
    if path is None or not path.exists():
        return canvas
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            under = Image.new("RGBA", im.size, (180, 180, 180, 255))
            im = Image.alpha_composite(under, im)
        thumb = ImageOps.contain(im.convert("RGB"), (TILE, TILE))
    canvas.paste((128, 128, 128), (0, 0, TILE, TILE))
    canvas.paste(thumb, ((TILE - thumb.width) // 2, (TILE - thumb.height) // 2))
    return canvas


def _label(manifest: dict | None, sku: str, status: str) -> str:
    if manifest is None:
        return f"{sku}: {status}"
    cut = manifest.get("cutout") or {}
    flags = "; ".join(f["reason"] for f in manifest.get("needs_review", []))
    seg = cut.get("segmenter") or ""
    return f"{sku} conf {cut.get('confidence', 0):.2f} {seg}\n{flags[:70] or 'ok'}"


def _product(store: Path, sku: str, photos: Path, variant: str) -> tuple[list[Path | None], str]:
    source = next(iter(sorted(photos.glob(f"{sku}_*"))), None)
    manifest_path = store / sku / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    status_path = store / "_status" / f"{sku}.json"
    status = ""
    if status_path.exists():
        status = json.loads(status_path.read_text())["result"].get("reason", "?")
    return [source, store / sku / "masters" / f"{variant}.png"], _label(manifest, sku, status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--variant", default="white")
    parser.add_argument("--photos", type=Path, default=DEFAULT)
    args = parser.parse_args()
    made = {p.name for p in args.store.iterdir() if p.is_dir() and not p.name.startswith("_")}
    skus = sorted(made | {p.stem for p in (args.store / "_status").glob("*.json")})
    rows = -(-len(skus) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * 2 * TILE, rows * (TILE + LABEL)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, sku in enumerate(skus):
        paths, label = _product(args.store, sku, args.photos, args.variant)
        x, y = (i % COLUMNS) * 2 * TILE, (i // COLUMNS) * (TILE + LABEL)
        for j, path in enumerate(paths):
            sheet.paste(_tile(path), (x + j * TILE, y))
        draw.text((x + 4, y + TILE + 2), label, fill="black")
    sheet.save(args.out)
    print(f"{args.out}: {len(skus)} products")


if __name__ == "__main__":
    main()
