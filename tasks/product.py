"""Task: one whole product (refresh check, prepare, render, publish) for catalog runs.

A catalog run uses one task per product rather than one per step: Prefect costs ~25 ms of
client and server work per task run, and the three steps of a product always run together.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from product_images.manifest import ProductResult
from product_images.pipeline import ProductRequest, make_product
from product_images.settings import get_settings
from tasks._store import store_at

__all__ = ["make_product_task"]


@task(name="make-product", cache_policy=NO_CACHE, task_run_name="product-{request.sku}")
def make_product_task(
    request: ProductRequest, store_url: str, force: bool = False
) -> ProductResult:
    """All masters, slots and the manifest of one product, unless it is unchanged; raises
    ProductError on bad input."""
    return make_product(request, store_at(store_url), get_settings(), force)
