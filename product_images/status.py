"""The last outcome of every product, kept in the store: what `product-images failed` lists and
`product-images retry` re-runs (failed and deferred products)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from product_images.manifest import ProductResult
from product_images.request import ProductRequest
from product_images.store import Store
from product_images.store.layout import STATUS, status_key

__all__ = ["ProductStatus", "last_statuses", "record_status"]


class ProductStatus(BaseModel):
    """A product's last run: what was asked, how it ended, when."""

    request: ProductRequest
    result: ProductResult
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))


def record_status(store: Store, request: ProductRequest, result: ProductResult) -> None:
    """Overwrite the product's status with this run's outcome."""
    status = ProductStatus(request=request, result=result)
    store.put(status_key(request.sku), status.model_dump_json().encode(), "application/json")


def last_statuses(store: Store, status: str | Collection[str] | None = None) -> list[ProductStatus]:
    """Every product's last outcome (optionally only those with `status`, one or several,
    e.g. ("failed", "deferred")), by SKU."""
    wanted = {status} if isinstance(status, str) else set(status or ())
    found = [
        ProductStatus.model_validate_json(store.get(key))
        for key in store.list(STATUS)
        if key.endswith(".json")
    ]
    return [s for s in found if not wanted or s.result.status in wanted]
