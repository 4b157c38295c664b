"""Flow: look for new photos under the incoming prefix; one `product.uploaded` event each.

The `process-product` deployment's trigger turns each event into a flow run. Events are
posted to the API in one request and only after it accepted them is the cursor saved, so a
crash or an API outage repeats uploads on the next look (made once: idempotency keys) and
never loses one. Polling rather than bucket notifications also means nothing is lost while
the server or `serve` is down: the next look catches up.

Two ways to look: `product-images serve` runs an `UploadWatcher` thread that looks every
`sensor_interval_seconds` (1 s) with no flow run per look, and hands each upload straight to
a run in its own process (flows/upload_runs.py); workers without `serve` run the
`upload-sensor` deployment every `worker_sensor_interval_seconds` (30 s), a flow run each,
which emits the events.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.related import related_resources_from_run_context
from prefect.logging import get_logger
from prefect.utilities.asyncutils import run_coro_as_sync

from product_images.settings import get_settings
from product_images.store import Store, open_store
from product_images.uploads import Skipped, Upload, UploadCursor, scan_new_uploads

__all__ = [
    "UPLOAD_EVENT",
    "UploadWatcher",
    "emit_upload_events",
    "sense_once",
    "sense_uploads",
    "upload_event",
    "watched_location",
]

#: The event a new photo produces; its resource is `product.<sku>`.
UPLOAD_EVENT = "product.uploaded"

#: Events per POST /api/events request.
_BATCH = 100

LoggerLike = logging.Logger | logging.LoggerAdapter[Any]


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


def watched_location(store_url: str, prefix: str) -> str:
    """Where uploads are looked for: the incoming prefix is relative to the store URL."""
    return f"{store_url.rstrip('/')}/{prefix}"


def _log_skipped(skipped: list[Skipped], logger: LoggerLike, store_url: str) -> None:
    """One line per object passed over, by its full location (store URL + key)."""
    for item in skipped:
        where = f"{store_url.rstrip('/')}/{item.key}"
        if item.kind in ("not_image", "bad_sku"):
            logger.warning("ignored %s: %s", where, item.reason)
        else:
            logger.info("skipped %s: %s", where, item.reason)


Announce = Callable[[str, list[Upload]], object]


def sense_once(
    target: Store,
    prefix: str,
    logger: LoggerLike,
    *,
    limit: int = 200,
    quiet: bool = False,
    announce: Announce = emit_upload_events,
) -> list[Upload]:
    """One look: announce the new uploads under `prefix`, then advance the cursor.

    `announce(store_url, uploads)` must return only once they are safe (events accepted by
    the API, or runs created): the cursor then moves past them. With `quiet`, a look that
    found nothing logs nothing (serve looks every second).
    """
    cursor = UploadCursor.load(target)
    skipped: list[Skipped] = []
    uploads = scan_new_uploads(target, prefix, cursor, limit=limit, skipped=skipped)
    _log_skipped(skipped, logger, target.url)
    if uploads:
        announce(target.url, uploads)
    if uploads or skipped:
        cursor.advance([*uploads, *skipped]).save(target)
    if uploads or not quiet:
        where = watched_location(target.url, prefix)
        logger.info("%d new upload(s) under %s", len(uploads), where)
    return uploads


@flow(name="sense-uploads", flow_run_name="sense-uploads")
def sense_uploads(store: str | None = None, limit: int = 200) -> list[Upload]:
    """Emit `product.uploaded` for each new photo in the store, then advance the cursor.

    Args:
        store: Store to watch (local folder or s3://bucket/prefix); unset = the setting.
            Uploads are looked for under its incoming prefix (`<store>/incoming/`).
        limit: Most uploads announced per look; the rest wait for the next look.
    """
    settings = get_settings()
    target = open_store(store or settings.store.url)
    return sense_once(target, settings.store.incoming_prefix, get_run_logger(), limit=limit)


class UploadWatcher:
    """`serve`'s sensor: a thread that looks every `interval` seconds, without flow runs.

    A flow run per look would cost a ~200 MB process and a row in the UI every second; a
    look here is one listing. Store or API errors are logged once and retried next look.
    """

    def __init__(
        self,
        store_url: str,
        prefix: str,
        interval: float,
        ready: Callable[[], bool],
        announce: Announce = emit_upload_events,
    ) -> None:
        """`ready` says when whatever `announce` hands uploads to exists (the deployment and
        its trigger): announced before, an upload would start nothing, and the cursor would
        pass it by."""
        self.store_url, self.prefix, self.interval = store_url, prefix, interval
        self._ready, self._announce = ready, announce
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="upload-watcher", daemon=True)
        self._logger = get_logger("upload-watcher")
        self._failing = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        target = open_store(self.store_url)
        while not self._stop.is_set() and not self._safe_ready():
            self._stop.wait(0.5)
        while not self._stop.is_set():
            started = time.monotonic()
            self._look(target)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _safe_ready(self) -> bool:
        try:
            return self._ready()
        except Exception:  # the server is still starting: ask again
            return False

    def _look(self, target: Store) -> None:
        try:
            sense_once(target, self.prefix, self._logger, quiet=True, announce=self._announce)
        except Exception as error:  # keep watching: the next look catches up
            where = watched_location(self.store_url, self.prefix)
            text = f"looking for uploads under {where} failed: {error!r}"
            if text != self._failing:
                self._logger.warning(text)
            self._failing = text
        else:
            self._failing = ""
