"""Flow: one product photo -> masters -> every slot of the chosen marketplaces -> manifest."""

from __future__ import annotations

from typing import Literal

from prefect import flow
from prefect.runtime import flow_run

from product_images.errors import ProductError
from product_images.flows.artifacts import publish_product_artifact
from product_images.manifest import ProductResult
from product_images.pipeline import ProductRequest, check_sku, failed_result
from product_images.settings import get_settings
from product_images.tasks._store import store_at
from product_images.tasks.global_limits import ensure_concurrency_limits
from product_images.tasks.product import make_product_task
from product_images.tasks.quiet_errors import quiet_product_errors

__all__ = ["make_in_run", "process_product"]

Backend = Literal["auto", "local", "gemini", "openai"]


@flow(name="process-product", flow_run_name="product-{sku}")
def process_product(
    sku: str,
    source: str,
    platforms: list[str] | None = None,
    store: str | None = None,
    backend: Backend | None = None,
    budget_usd: float | None = None,
    name: str = "",
    category: str = "",
    scene_hint: str = "",
    tag: str = "",
    force: bool = False,
    variants: list[Literal["white", "scene", "detail"]] | None = None,
) -> ProductResult:
    """Make one product's masters and marketplace images and publish its manifest."""
    quiet_product_errors()  # from the first check on: bad input is one line, not tracebacks
    settings = get_settings()
    request = ProductRequest(
        sku=check_sku(sku),
        source=source,
        platforms=platforms or settings.platforms,
        backend=backend,
        budget_usd=budget_usd,
        name=name,
        category=category,
        scene_hint=scene_hint,
        tag=tag,
        run_id=str(flow_run.get_id() or ""),
        variants=variants,
    )
    return make_in_run(request, store or settings.store, force)


def make_in_run(request: ProductRequest, store_url: str, force: bool) -> ProductResult:
    """The product task inside the current flow run, then the run's product artifact
    (thumbnails, checks, links), also when the product failed (then re-raised)."""
    quiet_product_errors()  # bad input: Prefect's one line, not two tracebacks
    ensure_concurrency_limits(get_settings())  # the task takes them strictly
    try:
        result = make_product_task(request, store_url, force)
    except ProductError as error:
        publish_product_artifact(failed_result(request.sku, error), store_at(store_url))
        raise
    publish_product_artifact(result, store_at(store_url))
    return result
