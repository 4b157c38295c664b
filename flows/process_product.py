"""Flow: one product photo -> masters -> every slot of the chosen marketplaces -> manifest.

The one flow that makes a product, whoever asks: the CLI's prefect engine, the Run form of
the `process-product` deployment, and each upload (`serve`, or a `product.uploaded` event),
which sets an idempotency key so the same upload is made once however often it is sent.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from product_images.errors import ProductError
from product_images.flows.artifacts import publish_product_artifact
from product_images.manifest import ProductResult
from product_images.request import ProductRequest
from product_images.runner import failed_result
from product_images.settings import get_settings
from product_images.store import open_store
from product_images.tasks._store import store_at
from product_images.tasks.global_limits import ensure_concurrency_limits
from product_images.tasks.product import make_product_task
from product_images.tasks.quiet_errors import quiet_product_errors
from product_images.uploads import claim_upload, finish_upload, release_upload

__all__ = ["process_product"]


@flow(name="process-product", flow_run_name="product-{request.sku}")
def process_product(
    request: ProductRequest,
    store: str | None = None,
    idempotency_key: str | None = None,
) -> ProductResult:
    """Make one product's masters and marketplace images and publish its manifest.

    Args:
        request: The product and how to make it.
        store: Store for outputs (and an upload's processed marker); empty = the `store`
            setting.
        idempotency_key: Set by uploads: the same key is processed once per store.
    """
    quiet_product_errors()  # from the first check on: bad input is one line, not tracebacks
    store_url = store or get_settings().store.url
    run_id = str(flow_run.get_id() or "")
    request = request.model_copy(update={"run_id": request.run_id or run_id})
    if not idempotency_key:
        return _make_in_run(request, store_url)
    return _make_once(request, store_url, idempotency_key, run_id)


def _make_once(request: ProductRequest, store_url: str, key: str, run_id: str) -> ProductResult:
    """The upload's product, unless another run claimed the upload first."""
    target = open_store(store_url)
    if not claim_upload(target, key, run_id):
        get_run_logger().info("upload %s: already processed or in progress", key)
        return ProductResult(
            sku=request.sku,
            status="unchanged",
            reason="already_processed",
            message=f"upload {key} already processed or in progress",
        )
    try:
        result = _make_in_run(request, store_url)
    except BaseException:
        release_upload(target, key)  # let a later trigger try again
        raise
    finish_upload(target, key, run_id, detail=result.status)
    return result


def _make_in_run(request: ProductRequest, store_url: str) -> ProductResult:
    """The product task inside this flow run, then the run's product artifact (thumbnails,
    checks, links), also when the product failed (then re-raised)."""
    ensure_concurrency_limits(get_settings())  # the task takes them strictly
    try:
        result = make_product_task(request, store_url)
    except ProductError as error:
        publish_product_artifact(failed_result(request.sku, error), store_at(store_url))
        raise
    publish_product_artifact(result, store_at(store_url))
    return result
