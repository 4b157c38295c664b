"""Paid calls and cost per product with the Gemini backend over the dev photos, against the
stand-in server (Gemini cannot be reached from here), in three passes over one store:

1. first run;
2. unchanged rerun (goal: 0 paid calls);
3. refresh with batch mode after every prompt template changed (a copy of the built-in
   templates with one more sentence, as PRODUCT_IMAGES_TEMPLATES_DIR): what
   `product-images batch --batch-mode` does, `prefill_refresh` then the normal run.

Printed: paid calls and USD per product for each pass, and the price per generated image of
the batch calls against the synchronous calls (from the ledger entries' cost_usd), with the
tokens behind them. Also the request body our client sends for a scene image.

    .venv/bin/python bench/generative_costs.py [--photos DIR] [--limit N] [--model ID]

Prices come from the model catalogue (product_images/model_catalogue/gemini.yaml); --model picks the
catalogued model the run uses (default: the catalogue's default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from product_images.batch_prefill import PrefillReport, prefill_refresh
from product_images.generative.ledger import Ledger, LedgerEntry
from product_images.generative.templates import BUILTIN_TEMPLATES
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.store import LocalStore
from product_images.testing.standin import StandinServer
from product_images.wiring import wire

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products" / "images"
PLATFORMS = ["amazon", "shopify", "instagram"]
TEMPLATE_CHANGE = "\nKeep the product's proportions exactly as photographed.\n"


def _requests(photos: list[Path], run_id: str) -> list[ProductRequest]:
    return [
        ProductRequest(
            sku=photo.stem.split("_")[0], source=str(photo), platforms=PLATFORMS, run_id=run_id
        )
        for photo in photos
    ]


def _pass(
    requests: list[ProductRequest], settings: Settings, store: LocalStore
) -> list[tuple[int, float, str]]:
    results = []
    for request in requests:
        result = run_product(request, wire(settings, store))
        results.append((result.paid_calls, result.cost_usd, result.status))
    return results


def _changed_templates(folder: Path) -> Path:
    """A copy of the built-in templates, each with one more sentence: every generation's
    cache key changes, and refresh sees 'prompt template changed' for every generated master."""
    shutil.copytree(BUILTIN_TEMPLATES, folder)
    for template in folder.glob("*.txt"):
        template.write_text(template.read_text().rstrip("\n") + TEMPLATE_CHANGE)
    return folder


def _trimmed(body: dict) -> str:
    for part in body["contents"][0]["parts"]:
        for key in ("inline_data", "inlineData"):
            if key in part:
                part[key]["data"] = part[key]["data"][:24] + "..."
    return json.dumps(body, indent=2)


def _print_pass(label: str, runs: list[tuple[int, float, str]], batch: PrefillReport) -> None:
    calls = [c for c, _, _ in runs]
    products = len(runs)
    paid = sum(calls) + batch.submitted
    cost = sum(c for _, c, _ in runs) + batch.cost_usd
    extra = f" ({batch.submitted} batch + {sum(calls)} synchronous)" if batch.submitted else ""
    print(
        f"{label:22s}: {paid} paid calls{extra} for {products} products = "
        f"{paid / products:.2f} per product (sync max {max(calls)}), ${cost:.4f} = "
        f"${cost / products:.4f} per product, done {sum(s == 'done' for *_, s in runs)}"
    )


def _price_line(label: str, entries: list[LedgerEntry]) -> float:
    ok = [e for e in entries if e.outcome == "ok"]
    if not ok:
        print(f"  {label:34s}: no image made")
        return float("nan")
    price = statistics.mean(e.cost_usd for e in ok)
    prompt = statistics.mean(e.prompt_tokens for e in ok)
    output = statistics.mean(e.output_tokens for e in ok)
    print(
        f"  {label:34s}: {len(ok):3d} images, ${price:.5f} per image "
        f"(mean tokens: {prompt:.0f} in, {output:.0f} out)"
    )
    return price


def _print_prices(first: list[LedgerEntry], refresh: list[LedgerEntry]) -> None:
    print("\nprice per generated image (ledger cost_usd of the calls that made one):")
    sync = _price_line("synchronous, first run", first)
    batch = _price_line("batch, refresh", [e for e in refresh if e.backend == "gemini-batch"])
    fallback = [e for e in refresh if e.backend != "gemini-batch"]
    if fallback:
        _price_line("synchronous fallback, refresh", fallback)
    print(f"  batch / synchronous: {batch / sync:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--model", default="", help="GEMINI_MODEL for the run")
    args = parser.parse_args()
    photos = sorted(args.photos.iterdir())[: args.limit or None]
    with StandinServer(api_key="bench-key") as server, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            store=f"{tmp}/store",
            backend="gemini",
            gemini_api_key=server.api_key,
            gemini_base_url=server.url,
            gemini_model=args.model,
            retry_base_delay=0.0,
            batch_poll_initial=0.2,
            batch_poll_max=1.0,
        )
        store = LocalStore(Path(tmp) / "store")
        ledger = Ledger(store)
        first = _pass(_requests(photos, "first"), settings, store)
        first_entries = ledger.entries()
        scene = next(
            r.json for r in server.requests if r.json and "Lifestyle product" in json.dumps(r.json)
        )
        second = _pass(_requests(photos, "rerun"), settings, store)
        seen = len(ledger.entries())
        changed = settings.model_copy(
            update={"templates_dir": _changed_templates(Path(tmp) / "templates")}
        )
        requests = _requests(photos, "refresh")
        batch = prefill_refresh(requests, wire(changed, store))
        third = _pass(requests, changed, store)
        refresh_entries = ledger.entries()[seen:]
    none = PrefillReport()
    print(
        f"model {settings.generation.gemini_model}, "
        f"imageSize {settings.generation.gemini_image_size}"
    )
    _print_pass("first run", first, none)
    _print_pass("unchanged rerun", second, none)
    _print_pass("refresh, --batch-mode", third, batch)
    print(f"  batch: {batch.submitted} submitted, {batch.made} made, left {batch.left_for_sync}")
    _print_prices(first_entries, refresh_entries)
    print("\nscene request body (base64 trimmed):")
    print(_trimmed(scene))


if __name__ == "__main__":
    main()
