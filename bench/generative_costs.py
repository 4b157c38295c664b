"""Paid calls and cost per product with the Gemini backend over the dev photos, first run and
unchanged rerun, against the stand-in server (Gemini cannot be reached from here). Also prints
the request body our client sends for a scene image.

    .venv/bin/python bench/generative_costs.py [--photos DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from product_images.pipeline import ProductRequest, run_product
from product_images.settings import Settings
from product_images.store import LocalStore
from product_images.testing.standin import StandinServer

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products" / "images"
PLATFORMS = ["amazon", "shopify", "instagram"]


def _pass(
    photos: list[Path], settings: Settings, store: LocalStore
) -> list[tuple[int, float, str]]:
    results = []
    for photo in photos:
        request = ProductRequest(
            sku=photo.stem.split("_")[0], source=str(photo), platforms=PLATFORMS
        )
        result = run_product(request, settings, store)
        results.append((result.paid_calls, result.cost_usd, result.status))
    return results


def _trimmed(body: dict) -> str:
    for part in body["contents"][0]["parts"]:
        for key in ("inline_data", "inlineData"):
            if key in part:
                part[key]["data"] = part[key]["data"][:24] + "..."
    return json.dumps(body, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    photos = sorted(args.photos.iterdir())[: args.limit or None]
    with StandinServer(api_key="bench-key") as server, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            store=tmp,
            backend="gemini",
            gemini_api_key=server.api_key,
            gemini_base_url=server.url,
            retry_base_delay=0.0,
        )
        store = LocalStore(Path(tmp))
        first = _pass(photos, settings, store)
        scene = next(
            r.json for r in server.requests if r.json and "Lifestyle product" in json.dumps(r.json)
        )
        second = _pass(photos, settings, store)
    for label, runs in (("first run", first), ("unchanged rerun", second)):
        calls = [c for c, _, _ in runs]
        cost = sum(c for _, c, _ in runs)
        print(
            f"{label:16s}: {sum(calls)} paid calls for {len(runs)} products "
            f"(mean {statistics.mean(calls):.2f}, max {max(calls)}), ${cost:.4f}, "
            f"done {sum(s == 'done' for *_, s in runs)}"
        )
    print("\nscene request body (base64 trimmed):")
    print(_trimmed(scene))


if __name__ == "__main__":
    main()
