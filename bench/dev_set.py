"""The local backend over the dev photos in ../shared/testdata/products: time per product,
needs_review flags with reasons, and the compliance of every Amazon `main` image.

    .venv/bin/python bench/dev_set.py [--photos DIR] [--platforms amazon,shopify,instagram]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from product_images.imaging.check import check_image
from product_images.manifest import Manifest
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.specs import load_specs
from product_images.store import LocalStore
from product_images.wiring import wire

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT)
    parser.add_argument("--platforms", default="amazon,shopify,instagram")
    parser.add_argument("--keep", type=Path, help="Keep the outputs in this folder.")
    args = parser.parse_args()
    platforms = args.platforms.split(",")
    amazon_main = load_specs()["amazon"].slot("main")
    times, flagged, failed, main_ok = [], [], [], 0
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.keep or scratch)
        store = LocalStore(Path(tmp))
        settings = Settings(store=tmp)
        for photo in sorted(args.photos.iterdir()):
            sku = photo.stem.split("_")[0]
            start = time.perf_counter()
            result = run_product(
                ProductRequest(sku=sku, source=str(photo), platforms=platforms),
                wire(settings, store),
            )
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            if result.status == "failed":
                failed.append(f"{photo.name}: [{result.reason}] {result.message}")
                print(f"{photo.name:44s} {elapsed:5.2f}s FAILED {result.reason}")
                continue
            manifest = Manifest.model_validate_json(store.get(result.manifest_key or ""))
            reasons = "; ".join(f"{f.step}: {f.reason}" for f in manifest.needs_review)
            if reasons:
                flagged.append(f"{photo.name}: {reasons}")
            ok = all(
                c.passed for c in check_image(store.get(f"{sku}/amazon/main.jpg"), amazon_main)
            )
            main_ok += ok
            print(
                f"{photo.name:44s} {elapsed:5.2f}s amazon/main {'pass' if ok else 'FAIL'} {reasons}"
            )
    done = len(times) - len(failed)
    print(
        f"\n{len(times)} photos: median {statistics.median(times):.2f} s/product "
        f"(mean {statistics.mean(times):.2f}, max {max(times):.2f})"
    )
    print(
        f"done {done}, failed {len(failed)}, amazon main passing check {main_ok}/{done}, "
        f"needs_review {len(flagged)}"
    )
    for line in flagged:
        print(f"  review  {line}")
    for line in failed:
        print(f"  failed  {line}")


if __name__ == "__main__":
    main()
