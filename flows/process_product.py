"""Flow: one product photo -> masters -> every slot of the chosen marketplaces -> manifest."""

from __future__ import annotations

from typing import Literal

from prefect import flow
from prefect.runtime import flow_run

from product_images.manifest import ProductResult
from product_images.pipeline import ProductRequest, check_sku
from product_images.settings import get_settings
from tasks.limits import ensure_concurrency_limits
from tasks.product import make_product_task

__all__ = ["process_product"]


@flow(name="process-product", flow_run_name="product-{sku}")
def process_product(
    sku: str,
    source: str,
    platforms: list[str] | None = None,
    store: str | None = None,
    backend: Literal["auto", "local", "gemini", "openai"] | None = None,
    budget_usd: float | None = None,
    name: str = "",
    category: str = "",
    scene_hint: str = "",
    tag: str = "",
    force: bool = False,
    variants: list[Literal["white", "scene", "detail"]] | None = None,
) -> ProductResult:
    """Make one product's masters and marketplace images and publish its manifest."""
    settings = get_settings()
    ensure_concurrency_limits(settings)  # the task takes them strictly
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
    store_url = store or settings.store
    return make_product_task(request, store_url, force)
