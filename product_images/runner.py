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
from product_images.status import record_status
from product_images.store import Store
from product_images.wiring import Wiring

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


def make_product(request: ProductRequest, wiring: Wiring) -> ProductResult:
    """One product end to end: skipped when nothing changed (unless `request.force`),
    otherwise prepare -> render -> publish. Its outcome is recorded for `failed`/`retry`; a
    product error is recorded, then raised. A store failure on the way becomes the product's
    StorageUnavailableError (deferred): the other products of the run go on."""
    check_sku(request.sku)
    store = wiring.store
    try:
        try:
            result = _unchanged(request, wiring) or _make(request, wiring)
            record_status(store, request, result)
        except StorageError as error:
            raise StorageUnavailableError(f"{request.sku}: {error}") from error
    except ProductError as error:
        _record_failure(store, request, error)
        raise
    return result


def _unchanged(request: ProductRequest, wiring: Wiring) -> ProductResult | None:
    if request.force or refresh_reasons(request, wiring.store, wiring.settings):
        return None
    return ProductResult(
        sku=request.sku, status="unchanged", manifest_key=manifest_key(request.sku)
    )


def _make(request: ProductRequest, wiring: Wiring) -> ProductResult:
    """prepare -> render -> publish, the masters handed from one step to the next in memory."""
    images = MasterImages()
    prepared = prepare_masters(request, wiring, images)
    outputs = render_slots(prepared, wiring, images)
    return publish_manifest(prepared, outputs, wiring)


def _record_failure(store: Store, request: ProductRequest, error: ProductError) -> None:
    """Record the outcome for `failed`/`retry`, unless the store is what failed."""
    try:
        record_status(store, request, failed_result(request.sku, error))
    except StorageError:
        if not isinstance(error, StorageUnavailableError):
            raise


def run_product(request: ProductRequest, wiring: Wiring) -> ProductResult:
    """The inline engine: the same steps as the Prefect flows, in this process; product errors
    become failed (or skipped, or deferred) results. A product deferred by its generative
    backend is tried again after the breaker's cool-down, `defer_retries` times at most."""
    try:
        return retry_deferred(lambda: make_product(request, wiring), wiring.settings)
    except ProductError as error:
        return failed_result(request.sku, error)
