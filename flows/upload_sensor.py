"""Flow: look for new photos under the incoming prefix; one `product.uploaded` event each.

The `process-product` deployment's trigger turns each event into a flow run. Events are
posted to the API in one request and only after it accepted them is the cursor saved, so a
crash or an API outage repeats uploads on the next look (made once: idempotency keys) and
never loses one. Polling rather than bucket notifications also means nothing is lost while
the server or `serve` is down: the next look catches up.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.related import related_resources_from_run_context
from prefect.utilities.asyncutils import run_coro_as_sync

from product_images.settings import get_settings
from product_images.store import open_store
from product_images.uploads import Skipped, Upload, UploadCursor, scan_new_uploads

__all__ = ["UPLOAD_EVENT", "emit_upload_events", "sense_uploads", "upload_event"]

#: The event a new photo produces; its resource is `product.<sku>`.
UPLOAD_EVENT = "product.uploaded"

#: Events per POST /api/events request.
_BATCH = 100


def upload_event(store_url: str, upload: Upload) -> Event:
    """The event of one upload. Its id derives from store and idempotency key, so a repeat
    of the same upload is the same event, which the server's trigger engine drops."""
    return Event.model_validate(
        {
            "occurred": datetime.now(UTC),
            "event": UPLOAD_EVENT,
            "resource": {
                "prefect.resource.id": f"product.{upload.sku}",
                "prefect.resource.name": upload.sku,
            },
            "payload": {
                "sku": upload.sku,
                "source": upload.source_url,
                "etag": upload.etag,
                "idempotency_key": upload.idempotency_key,
                "key": upload.key,
                "size": upload.size,
                "store": store_url,
            },
            "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{store_url}#{upload.idempotency_key}"),
        }
    )


async def _post(events: list[Event]) -> None:
    """POST the events; returns once the API accepted them (raises otherwise)."""
    async with get_client() as client:
        related = await related_resources_from_run_context(client)
        for event in events:
            event.related = [*event.related, *related]
        for start in range(0, len(events), _BATCH):
            batch = [event.model_dump(mode="json") for event in events[start : start + _BATCH]]
            await client.request("POST", "/events", json=batch)


def emit_upload_events(store_url: str, uploads: list[Upload]) -> list[Event]:
    """Emit one event per upload and wait until the API has them.

    `emit_event` would queue them for a background websocket that confirms nothing; the
    cursor must not move past an upload whose event may still be lost.
    """
    events = [upload_event(store_url, upload) for upload in uploads]
    if events:
        run_coro_as_sync(_post(events))
    return events


def _log_skipped(skipped: list[Skipped]) -> None:
    logger = get_run_logger()
    for item in skipped:
        if item.kind in ("not_image", "bad_sku"):
            logger.warning("ignored %s: %s", item.key, item.reason)
        else:
            logger.info("skipped %s: %s", item.key, item.reason)


@flow(name="sense-uploads", flow_run_name="sense-uploads")
def sense_uploads(store: str | None = None, limit: int = 200) -> list[Upload]:
    """Emit `product.uploaded` for each new photo in the store, then advance the cursor.

    Args:
        store: Store to watch (local folder or s3://bucket/prefix); unset = the setting.
        limit: Most uploads announced per look; the rest wait for the next look.
    """
    settings = get_settings()
    target = open_store(store or settings.store)
    cursor = UploadCursor.load(target)
    skipped: list[Skipped] = []
    uploads = scan_new_uploads(
        target, settings.incoming_prefix, cursor, limit=limit, skipped=skipped
    )
    _log_skipped(skipped)
    emit_upload_events(target.url, uploads)
    cursor.advance([*uploads, *skipped]).save(target)
    get_run_logger().info("%d new upload(s) in %s", len(uploads), target.url)
    return uploads
