"""Every deployment of the pipeline, defined once.

    process-product   on demand (UI form, CLI, API) and on each `product.uploaded` event
    catalog-refresh   cron + time zone from the settings, over the refresh catalog
    upload-sensor     for workers: every `worker_sensor_interval_seconds`, turns new uploads
                      into events (`serve` looks every second in-process instead: no flow
                      run per look)

`product-images serve` runs the first two in one process (no work pool). For workers, register them
to the `work_pool` setting's pool with `[d.apply() for d in deployments(settings,
work_pool=True)]`, or `prefect deploy --all` with prefect.yaml, which mirrors this module
(tests/flows/test_deployments.py checks that the two agree).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval
from prefect.utilities.callables import ParameterSchema

from product_images.flows.process_catalog import process_catalog
from product_images.flows.process_product import process_product
from product_images.flows.upload_sensor import UPLOAD_EVENT, sense_uploads
from product_images.settings import Settings, get_settings
from product_images.specs import load_specs
from product_images.store import open_store
from product_images.summary import CatalogSummary
from product_images.uploads import write_store_catalog

__all__ = [
    "HIDDEN_PARAMETERS",
    "HIDDEN_REQUEST_FIELDS",
    "deployments",
    "refresh_catalog",
    "run_form_schema",
    "upload_trigger",
]

#: Work queues of the work pool: a worker serves the lower number first, so a new upload
#: jumps ahead of a nightly refresh's backlog.
UPLOADS_QUEUE = "uploads"
REFRESH_QUEUE = "refresh"

_ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


#: Parameters the upload trigger sets and a person never should: not on the Run form.
HIDDEN_PARAMETERS = ("idempotency_key", "store")
#: Fields of the request the run sets itself: not on the Run form either.
HIDDEN_REQUEST_FIELDS = ("run_id",)


@flow(name="refresh-catalog")
def refresh_catalog(
    catalog: str | None = None,
    store: str | None = None,
    force: bool = False,
    batch_mode: bool = False,
) -> CatalogSummary:
    """Re-make a catalog's products; no catalog = every product with a manifest in the store.

    Args:
        catalog: CSV/JSON file, folder or s3:// prefix; empty = the `refresh_catalog`
            setting, else every product in the store.
        store: Store for outputs; empty = the `store` setting.
        force: Re-make products even when nothing changed.
        batch_mode: Make the generations with the Gemini Batch API first (half price).
    """
    settings = get_settings()
    store_url = store or settings.store.url
    location = catalog or settings.serving.refresh_catalog
    if location is None:
        written = write_store_catalog(open_store(store_url))
        for key in written.unreadable:
            get_run_logger().warning("not refreshed: unreadable manifest %s", key)
        location = written.location
    return process_catalog(catalog=location, store=store_url, force=force, batch_mode=batch_mode)


def upload_trigger() -> DeploymentEventTrigger:
    """One run of process-product per `product.uploaded` event, parameters from its payload."""
    return DeploymentEventTrigger(
        name="process-product-on-upload",
        description="Make the product of each uploaded photo.",
        expect={UPLOAD_EVENT},
        match={"prefect.resource.id": "product.*"},
        parameters={
            "request": {"sku": "{{ event.payload.sku }}", "source": "{{ event.payload.source }}"},
            "idempotency_key": "{{ event.payload.idempotency_key }}",
            "store": "{{ event.payload.store }}",
        },
    )


def _one_at_a_time() -> ConcurrencyLimitConfig:
    """A run that finds its predecessor still running is cancelled, not queued."""
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def _product(settings: Settings, placement: dict[str, Any]) -> RunnerDeployment:
    deployment = RunnerDeployment.from_flow(
        process_product,
        name="process-product",
        description="Make one product: from the Run form, or from each uploaded photo.",
        triggers=[upload_trigger()],
        **placement,
    )
    known = sorted(load_specs(settings.spec_dirs()))
    schema = run_form_schema(deployment._parameter_openapi_schema.model_dump(), known)
    deployment._parameter_openapi_schema = ParameterSchema.model_validate(schema)
    return deployment


def run_form_schema(schema: dict[str, Any], platforms: list[str]) -> dict[str, Any]:
    """The Run form a shop manager sees: platforms chosen from `platforms`, no internal
    parameters, and optional fields without Prefect's "is type None" toggle (an empty
    field is simply not sent, and the model's default None applies)."""
    for name in HIDDEN_PARAMETERS:
        schema["properties"].pop(name, None)
    form = schema["definitions"]["ProductRequest"]["properties"]
    for name in HIDDEN_REQUEST_FIELDS:
        form.pop(name)
    for field in form.values():
        choices = [c for c in field.get("anyOf", []) if c.get("type") != "null"]
        if len(choices) == 1 and field.get("default", 0) is None:
            del field["anyOf"], field["default"]
            field.update(choices[0])
    form["platforms"]["items"] = {"type": "string", "enum": platforms}
    form["platforms"]["uniqueItems"] = True
    return schema


def _refresh(settings: Settings, placement: dict[str, Any]) -> RunnerDeployment:
    schedule = Cron(
        settings.serving.refresh_cron,
        timezone=settings.serving.refresh_timezone,
        slug="nightly-refresh",
    )
    return RunnerDeployment.from_flow(
        refresh_catalog,
        name="catalog-refresh",
        description="Re-make the catalog on a schedule (all products in the store by default).",
        schedules=[schedule],
        parameters={"catalog": settings.serving.refresh_catalog}
        if settings.serving.refresh_catalog
        else {},
        concurrency_limit=_one_at_a_time(),
        **placement,
    )


def _sensor(settings: Settings, placement: dict[str, Any]) -> RunnerDeployment:
    every = timedelta(seconds=settings.serving.worker_sensor_interval_seconds)
    # A fixed anchor, so registering again does not move the schedule.
    schedule = Interval(every, anchor_date=_ANCHOR, slug="poll-incoming")
    return RunnerDeployment.from_flow(
        sense_uploads,
        name="upload-sensor",
        description="Look for new photos under the incoming prefix; one event per photo.",
        schedules=[schedule],
        concurrency_limit=_one_at_a_time(),
        **placement,
    )


def _placement(settings: Settings, work_pool: bool, queue: str) -> dict[str, Any]:
    """Where runs go: nowhere in particular for `serve`, a pool's queue for workers."""
    return {
        "work_pool_name": settings.serving.work_pool if work_pool else None,
        "work_queue_name": queue if work_pool else None,
        "entrypoint_type": EntrypointType.MODULE_PATH,  # the package is installed where it runs
        "tags": ["product-images"],
    }


def deployments(
    settings: Settings | None = None, *, work_pool: bool = False
) -> list[RunnerDeployment]:
    """process-product and catalog-refresh, configured from `settings`; with `work_pool=True`
    also upload-sensor.

    With `work_pool=True` they go to the `work_pool` setting's pool (queues `uploads` and
    `refresh`); otherwise they are for `prefect.serve`, which takes no pool and looks for
    uploads itself (product_images.flows.upload_sensor.UploadWatcher).
    """
    settings = settings or get_settings()
    built = [
        _product(settings, _placement(settings, work_pool, UPLOADS_QUEUE)),
        _refresh(settings, _placement(settings, work_pool, REFRESH_QUEUE)),
    ]
    if work_pool:
        built.append(_sensor(settings, _placement(settings, work_pool, UPLOADS_QUEUE)))
    return built
