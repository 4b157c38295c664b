"""Flow: every product of a catalog (CSV/JSON file, folder or s3:// prefix), bounded concurrency.

One product's failure never stops the others; the flow returns a summary of all of them.

Products are submitted a window at a time and their futures dropped as soon as their results
are in (`windowed`), and what Prefect keeps of each task run let go then (`forget_task_run`),
so a catalog of any size holds only a few futures and their task states: the flow's memory
stays flat along the run (bench/catalog_memory.py).
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner

from product_images.allocator import RELEASE_EVERY, bound_arenas, release_free_memory
from product_images.catalog import load_catalog
from product_images.errors import ProductError
from product_images.flows.artifacts import ProgressReporter, publish_run_artifacts
from product_images.flows.bookkeeping import forget_task_run
from product_images.manifest import ProductResult
from product_images.runner import failed_result
from product_images.settings import get_settings
from product_images.store import open_store
from product_images.streaming import windowed
from product_images.summary import CatalogSummary
from product_images.tasks.global_limits import ensure_concurrency_limits
from product_images.tasks.prefill import prefill_task
from product_images.tasks.product import product_task
from product_images.tasks.quiet_errors import quiet_product_errors

__all__ = ["catalog_flow", "process_catalog"]

#: Products submitted ahead of the oldest one not collected, per product run at once (and at
#: least MIN_WINDOW, as `catalog_flow` may run more at once than the setting says): enough that
#: a slow or deferred product never leaves a worker idle, few enough to keep memory flat.
WINDOW_PER_WORKER = 4
MIN_WINDOW = 64


def _result_of(sku: str, future: PrefectFuture[ProductResult]) -> ProductResult:
    """The product's result; what Prefect kept of its run is let go (see bookkeeping)."""
    try:
        return _outcome(sku, future)
    finally:
        forget_task_run(future.task_run_id)


def _outcome(sku: str, future: PrefectFuture[ProductResult]) -> ProductResult:
    future.wait()
    state: State[ProductResult] = future.state
    if state.is_completed():
        return future.result()
    try:
        future.result()
    except ProductError as error:
        return failed_result(sku, error)
    except Exception as error:  # a crash of one product must not hide the others
        return ProductResult(sku=sku, status="failed", reason="crashed", message=repr(error)[:300])
    return ProductResult(sku=sku, status="failed", reason="crashed", message=str(state.name))


def _run_label(tag: str) -> str:
    """What the run's artifacts are keyed by: this run's name (unique per run, as the UI
    shows it), with the catalog tag in front when there is one."""
    name = str(flow_run.get_name() or "") or str(flow_run.get_id() or "")[:8]
    return "-".join(part for part in (tag, name) if part) or "catalog"


@flow(
    name="process-catalog",
    task_runner=ThreadPoolTaskRunner(max_workers=get_settings().running.concurrency),  # type: ignore[arg-type]
)
def process_catalog(
    catalog: str,
    platforms: list[str] | None = None,
    store: str | None = None,
    backend: Literal["auto", "local", "gemini", "openai"] | None = None,
    budget_usd: float | None = None,
    tag: str = "",
    force: bool = False,
    batch_mode: bool = False,
) -> CatalogSummary:
    """Make every product of the catalog; a summary lists each product's outcome.

    A product deferred by its generative backend is retried after the breaker's cool-down
    (`defer_retries` times) while the others go on; it ends done, or deferred."""
    bound_arenas()  # before the task runner's threads: a worker's flow run starts here
    quiet_product_errors()  # a bad photo: one line in the log, not a traceback
    settings = get_settings()
    ensure_concurrency_limits(settings)  # the tasks take them strictly
    store_url = store or settings.store.url
    loaded = load_catalog(
        catalog,
        platforms or settings.imaging.platforms,
        run_id=str(flow_run.get_id() or ""),
        tag=tag,
        budget_usd=budget_usd,
        backend=backend,
        force=force,
    )
    label = _run_label(tag)
    progress = ProgressReporter(label)
    progress.start(len(loaded.requests) + len(loaded.rejected))
    progress.advance(len(loaded.rejected))
    if batch_mode:  # generations at half price first; the products then find them cached
        prefill_task(loaded.requests, store_url)
    results = list(loaded.rejected)
    make = product_task(settings)
    outcomes = windowed(
        loaded.requests,
        lambda request: make.submit(request, store_url),
        lambda request, future: _result_of(request.sku, future),
        max(WINDOW_PER_WORKER * settings.running.concurrency, MIN_WINDOW),
    )
    for done, result in enumerate(outcomes, start=1):
        results.append(result)
        progress.advance()
        if done % RELEASE_EVERY == 0:  # else the freed memory of past products stays held
            release_free_memory()
    progress.finish()
    summary = CatalogSummary(results=results)
    for line in summary.lines():
        get_run_logger().info(line)
    publish_run_artifacts(summary, open_store(store_url), run_label=label)
    return summary


def catalog_flow(dask_address: str | None, concurrency: int | None = None) -> Any:
    """`process_catalog` on Dask workers when an address (or 'local') is given, else on
    `concurrency` threads (default: the setting as read now, not at import)."""
    if not dask_address:
        threads = concurrency or get_settings().running.concurrency
        return process_catalog.with_options(task_runner=ThreadPoolTaskRunner(max_workers=threads))  # type: ignore[arg-type]
    from prefect_dask import DaskTaskRunner  # optional dependency: pip install '.[dask]'

    if dask_address == "local":
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})
    else:
        runner = DaskTaskRunner(address=dask_address)
    return process_catalog.with_options(task_runner=runner)  # type: ignore[arg-type]
