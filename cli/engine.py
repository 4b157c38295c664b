"""How the CLI runs the pipeline: through Prefect flows, or inline with the same steps.

A temporary Prefect server takes several seconds to start, which dwarfs a one-photo run, so
without PREFECT_API_URL the CLI calls the very same core steps in-process ("inline"). With a
server configured (or `--engine prefect`), it runs the flows and every run shows in the UI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from product_images.allocator import RELEASE_EVERY, bound_arenas, release_free_memory
from product_images.catalog import Catalog
from product_images.cores import usable_cores
from product_images.errors import ProductError
from product_images.manifest import ProductResult
from product_images.request import ProductRequest
from product_images.runner import failed_result, run_product
from product_images.settings import Settings
from product_images.streaming import windowed
from product_images.wiring import Wiring, wire

__all__ = ["alone", "resolve_engine", "run_catalog", "run_one"]

#: Products submitted ahead of the oldest one not collected, per product run at once.
WINDOW_PER_WORKER = 4


def resolve_engine(choice: str) -> str:
    """'prefect' or 'inline' for a setting of 'auto', 'prefect' or 'inline'."""
    if choice == "auto":
        return "prefect" if os.environ.get("PREFECT_API_URL") else "inline"
    return choice


def alone(settings: Settings) -> Settings:
    """The settings for one product run by itself: no pixel worker processes (starting them
    takes longer than one photo's work), and the model on every core the process may use
    (nothing else waits for them: one 1 MP photo's run ~0.25 s shorter, bench/RESULTS.md §8)."""
    threads = max(settings.imaging.segmenter_threads, min(usable_cores(), 32))
    return settings.with_overrides(processes=0, segmenter_threads=threads)


def run_one(request: ProductRequest, settings: Settings, engine: str) -> ProductResult:
    """One product through the chosen engine; unchanged products are skipped unless forced."""
    if engine == "inline":
        return run_product(request, wire(alone(settings)))
    from product_images.flows.process_product import (
        process_product,  # Prefect is imported only when used
    )

    try:
        return process_product(request=request, store=settings.store.url)
    except ProductError as error:
        return failed_result(request.sku, error)


def run_catalog(
    catalog: Catalog,
    wiring: Wiring,
    on_done: Callable[[ProductResult], None],
) -> list[ProductResult]:
    """Every product of a loaded catalog inline, the `concurrency` setting at a time."""
    bound_arenas()  # before the pool's threads (product_images.allocator)
    results = list(catalog.rejected)
    for done, result in enumerate(_inline_results(catalog.requests, wiring), start=1):
        on_done(result)
        results.append(result)
        if done % RELEASE_EVERY == 0:  # else the freed memory of past products stays held
            release_free_memory()
    return results


def _inline_results(requests: list[ProductRequest], wiring: Wiring) -> Iterator[ProductResult]:
    """Results in catalog order, a bounded window of products submitted at a time (memory stays
    flat whatever the catalog's size; `pool.map` would submit every product at once)."""
    concurrency = wiring.settings.running.concurrency
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        yield from windowed(
            requests,
            lambda request: pool.submit(run_product, request, wiring),
            lambda _, future: future.result(),
            WINDOW_PER_WORKER * concurrency,
        )
