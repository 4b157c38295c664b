"""Task: fill the generation cache of a refresh with Gemini Batch API jobs (half price)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from product_images.batch_prefill import PrefillReport, prefill_refresh
from product_images.request import ProductRequest
from product_images.tasks._store import store_at
from product_images.tasks.secrets import resolved_settings
from product_images.wiring import wire

__all__ = ["prefill_task"]


@task(name="prefill-batch-api", cache_policy=NO_CACHE)
def prefill_task(requests: list[ProductRequest], store_url: str) -> PrefillReport:
    """Batch the generations of the products this refresh will redo."""
    report = prefill_refresh(requests, wire(resolved_settings(), store_at(store_url)))
    get_run_logger().info(
        "batch: %d submitted, %d made, $%.4f; left for normal calls: %s",
        report.submitted,
        report.made,
        report.cost_usd,
        "; ".join(report.left_for_sync) or "none",
    )
    return report
