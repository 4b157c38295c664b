"""Task: write a product's manifest, the point from which readers trust it."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from product_images.manifest import OutputRecord, ProductResult
from product_images.pipeline import PreparedProduct, publish_manifest
from product_images.settings import get_settings
from tasks._store import store_at

__all__ = ["publish_manifest_task"]


@task(
    name="publish-manifest", cache_policy=NO_CACHE, task_run_name="publish-{prepared.request.sku}"
)
def publish_manifest_task(
    prepared: PreparedProduct, outputs: list[OutputRecord], store_url: str
) -> ProductResult:
    """<sku>/manifest.json, written after every output."""
    return publish_manifest(prepared, outputs, store_at(store_url), get_settings())
