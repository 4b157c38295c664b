"""Task: render and check every marketplace slot of one product."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from product_images.manifest import OutputRecord
from product_images.pipeline import PreparedProduct, render_slots
from product_images.settings import get_settings
from tasks._store import store_at

__all__ = ["render_slots_task"]


@task(name="render-slots", cache_policy=NO_CACHE, task_run_name="render-{prepared.request.sku}")
def render_slots_task(prepared: PreparedProduct, store_url: str) -> list[OutputRecord]:
    """Every slot's image, stored as <sku>/<platform>/<slot>.<ext>."""
    return render_slots(prepared, store_at(store_url), get_settings())
