"""Task: load the source photo, cut the product out, store its masters."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from product_images.pipeline import PreparedProduct, ProductRequest, prepare_masters
from product_images.settings import get_settings
from tasks._store import store_at

__all__ = ["prepare_masters_task"]


@task(name="prepare-masters", cache_policy=NO_CACHE, task_run_name="prepare-{request.sku}")
def prepare_masters_task(request: ProductRequest, store_url: str) -> PreparedProduct:
    """Masters of one product, stored as <sku>/masters/<variant>.png."""
    return prepare_masters(request, store_at(store_url), get_settings())
