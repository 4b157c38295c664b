"""The layer above the steps: one product's run, Prefect-free.

`make_product` decides whether the product must be made at all (refresh), runs the steps of
`product_images.pipeline` (prepare -> render -> publish) and records the outcome for
`failed`/`retry`; `run_product`, the inline engine, adds the in-run deferral retries and turns
product errors into results. The Prefect task (`tasks/product.py`) calls `make_product` and
leaves deferral retries to Prefect.
"""

from __future__ import annotations

from typing import Literal

from product_images.deferral import is_deferred, retry_deferred
from product_images.errors import (
    BudgetExceededError,
    ProductError,
    StorageError,
    StorageUnavailableError,
)
from product_images.manifest import ProductResult, manifest_key
from product_images.pipeline import MasterImages, prepare_masters, publish_manifest, render_slots
from product_images.refresh import refresh_reasons
from product_images.request import ProductRequest, check_sku
from product_images.settings import Settings
from product_images.status import record_status
from product_images.store import Store, open_store

__all__ = ["failed_result", "make_product", "run_product"]


def failed_result(sku: str, error: ProductError) -> ProductResult:
    """How a product that could not be made is reported: over budget is 'skipped', a backend
    or store in trouble 'deferred' (see product_images.deferral), anything else 'failed'."""
    status: Literal["skipped", "deferred", "failed"] = "failed"
    if isinstance(error, BudgetExceededError):
        status = "skipped"
    elif is_deferred(error):
        status = "deferred"
    return ProductResult(sku=sku, status=status, reason=error.reason, message=str(error))


def make_product(request: ProductRequest, store: Store, settings: Settings) -> ProductResult:
    """One product end to end: skipped when nothing changed (unless `request.force`),
    otherwise prepare -> render -> publish. Its outcome is recorded for `failed`/`retry`; a
    product error is recorded, then raised. A store failure on the way becomes the product's
    StorageUnavailableError (deferred): the other products of the run go on."""
    check_sku(request.sku)
    try:
        try:
            result = _unchanged(request, store, settings) or _make(request, store, settings)
            record_status(store, request, result)
        except StorageError as error:
            raise StorageUnavailableError(f"{request.sku}: {error}") from error
    except ProductError as error:
        _record_failure(store, request, error)
        raise
    return result


def _unchanged(request: ProductRequest, store: Store, settings: Settings) -> ProductResult | None:
    if request.force or refresh_reasons(request, store, settings):
        return None
    return ProductResult(
        sku=request.sku, status="unchanged", manifest_key=manifest_key(request.sku)
    )


def _make(request: ProductRequest, store: Store, settings: Settings) -> ProductResult:
    """prepare -> render -> publish, the masters handed from one step to the next in memory."""
    images = MasterImages()
    prepared = prepare_masters(request, store, settings, images)
    outputs = render_slots(prepared, store, settings, images)
    return publish_manifest(prepared, outputs, store, settings)


def _record_failure(store: Store, request: ProductRequest, error: ProductError) -> None:
    """Record the outcome for `failed`/`retry`, unless the store is what failed."""
    try:
        record_status(store, request, failed_result(request.sku, error))
    except StorageError:
        if not isinstance(error, StorageUnavailableError):
            raise


def run_product(
    request: ProductRequest, settings: Settings, store: Store | None = None
) -> ProductResult:
    """The inline engine: the same steps as the Prefect flows, in this process; product errors
    become failed (or skipped, or deferred) results. A product deferred by its generative
    backend is tried again after the breaker's cool-down, `defer_retries` times at most."""
    target = store or open_store(settings.store.url)
    try:
        return retry_deferred(lambda: make_product(request, target, settings), settings)
    except ProductError as error:
        return failed_result(request.sku, error)
