"""Time to make each local master at the master side (2048 px), as a ratio to the plain white
master measured in the same run: the shadowed white, the scene, the detail crops.

    nice .venv/bin/python bench/master_speed.py [PHOTO ...]   (default: the demo's products)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from product_images.backends.base import MasterContext
from product_images.backends.local import LocalBackend
from product_images.demo import make_sample_catalog
from product_images.imaging.compose import with_shadow
from product_images.imaging.loading import decode_source
from product_images.pipeline import cut_out
from product_images.settings import Settings
from product_images.specs import ShadowSpec, load_specs
from product_images.store import LocalStore


def _best(call: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def _measure(
    photo: Path,
    backend: LocalBackend,
    settings: Settings,
    context: MasterContext,
    shadow: ShadowSpec,
) -> tuple[float, dict[str, float]]:
    """Seconds for the plain white master, and for each other master."""
    data = photo.read_bytes()
    source = decode_source(data, str(photo), max_pixels=settings.sources.max_pixels, min_side=64)
    product = cut_out(source, str(photo), settings)
    white = backend.make_master("white", product, settings, context)
    base = _best(lambda: backend.make_master("white", product, settings, context))
    return base, {
        "white+shadow": _best(lambda: with_shadow(white, shadow)),
        "scene": _best(lambda: backend.make_master("scene", product, settings, context)),
        "detail": _best(lambda: backend.make_master("detail", product, settings, context)),
    }


def main() -> None:
    settings = Settings(store="unused")
    backend = LocalBackend()
    shadow = load_specs()["shopify"].slot("main").shadow
    assert shadow is not None
    ratios: dict[str, list[float]] = {"white+shadow": [], "scene": [], "detail": []}
    with tempfile.TemporaryDirectory() as scratch:
        photos = [Path(p) for p in sys.argv[1:]] or sorted(
            p for p in make_sample_catalog(Path(scratch)).parent.iterdir() if p.suffix != ".csv"
        )
        context = MasterContext(sku="x", source_sha256="", store=LocalStore(Path(scratch)))
        for photo in photos:
            base, row = _measure(photo, backend, settings, context, shadow)
            for name, seconds in row.items():
                ratios[name].append(seconds / base)
            cells = "  ".join(f"{k} x{v / base:.2f}" for k, v in row.items())
            print(f"{photo.name:28s} white {base:.2f} s  {cells}")
    medians = "  ".join(f"{k} x{statistics.median(v):.2f}" for k, v in ratios.items())
    print(f"\nmedian ratio to the plain white master: {medians}")


if __name__ == "__main__":
    main()
