"""New product photos found in the store by polling, and the products a refresh re-makes.

Uploads land under the incoming prefix (setting `incoming_prefix`, default `incoming/`):

    incoming/<sku>.<ext>       one photo per product
    incoming/<sku>/<file>      a folder per product; each photo is an upload
    incoming/<any name>        with S3 metadata `sku` (x-amz-meta-sku), which wins

`scan_new_uploads` lists the prefix and returns the uploads the `UploadCursor` has not
seen. The caller emits their events and only then saves the advanced cursor, so a crash in
between repeats uploads instead of missing them. Repeats are absorbed downstream: each upload
has an idempotency key (SKU plus ETag, or plus the SHA-256 of the bytes where the store has
no ETags) and the run that makes it first claims `_state/processed/<idempotency key>` with a
conditional put. The scan also skips uploads whose marker exists, so a lost cursor does not
flood the pipeline.

Why a look-back window rather than "everything after the last time seen": an object's time is
when its upload started (S3 multipart uploads keep the initiation time), so a big photo can
appear in a listing after smaller ones with later times. Objects up to `LOOKBACK` before the
newest seen one are looked at again; the cursor remembers which of those it already handled.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, Field, ValidationError

from product_images.catalog import IMAGE_SUFFIXES
from product_images.errors import InvalidSkuError, ObjectNotFoundError, StorageError
from product_images.manifest import Manifest
from product_images.request import check_sku
from product_images.store import ObjectInfo, Store, local_path
from product_images.store.layout import (
    CURSOR_KEY,
    REFRESH_CATALOG_KEY,
    classify,
    processed_key,
)

__all__ = [
    "CLAIM_TIMEOUT",
    "CURSOR_KEY",
    "LOOKBACK",
    "MAX_SEEN",
    "REFRESH_CATALOG_KEY",
    "Skipped",
    "StoreCatalog",
    "Upload",
    "UploadCursor",
    "UploadMarker",
    "claim_upload",
    "finish_upload",
    "idempotency_key",
    "object_location",
    "processed_key",
    "release_upload",
    "scan_new_uploads",
    "sku_from_key",
    "write_store_catalog",
]


#: How far before the newest upload seen a scan looks again (see the module docstring).
LOOKBACK = timedelta(minutes=15)
#: Most objects the cursor remembers; beyond it the oldest are forgotten (markers still hold).
MAX_SEEN = 10_000
#: A claim older than this belongs to a run that died: another run may take the upload over.
CLAIM_TIMEOUT = timedelta(hours=1)

_SAFE_ETAG = re.compile(r"^[A-Za-z0-9-]{1,128}$")


def sku_from_key(key: str, prefix: str, metadata: Mapping[str, str] | None = None) -> str:
    """The SKU of an uploaded object: its `sku` metadata, else its name under `prefix`.

    Raises InvalidSkuError when neither gives a usable SKU.
    """
    for name, value in (metadata or {}).items():
        if name.lower() == "sku" and value.strip():  # some servers capitalise metadata names
            return check_sku(value.strip())
    if not key.startswith(prefix):
        raise InvalidSkuError(f"{key!r} is not under the upload prefix {prefix!r}")
    parts = key[len(prefix) :].split("/")
    if len(parts) == 1:
        return check_sku(posixpath.splitext(parts[0])[0])
    if len(parts) == 2:
        return check_sku(parts[0])
    raise InvalidSkuError(
        f"{key!r}: cannot tell the SKU; upload as {prefix}<sku>.<ext> or {prefix}<sku>/<file>, "
        "or set the object's 'sku' metadata"
    )


def idempotency_key(sku: str, etag: str | None, data: bytes | None = None) -> str:
    """'<sku>/etag-<etag>', or '<sku>/sha256-<hex of the bytes>' when there is no ETag.

    The same photo uploaded again for the same SKU gets the same key, so it is made once.
    """
    if etag:
        digest = etag if _SAFE_ETAG.match(etag) else hashlib.sha256(etag.encode()).hexdigest()
        return f"{check_sku(sku)}/etag-{digest}"
    if data is None:
        raise ValueError("an upload without an ETag needs its bytes for the idempotency key")
    return f"{check_sku(sku)}/sha256-{hashlib.sha256(data).hexdigest()}"


def object_location(store: Store, key: str) -> str:
    """A location the pipeline can read the object from: s3://bucket/key or a local path."""
    base = store.url.rstrip("/")
    if base.startswith("file:"):
        return str(local_path(f"{base}/{quote(key)}"))
    return f"{base}/{key}"


class Upload(BaseModel):
    """One new photo to make a product from."""

    sku: str = Field(description="The product the photo is for.")
    source_url: str = Field(description="Where the pipeline reads the photo from.")
    key: str = Field(description="The object's key in the store.")
    etag: str | None = Field(description="The object's ETag; None in local stores.")
    size: int = Field(description="Bytes.")
    last_modified: datetime = Field(description="When the object landed in the store.")
    idempotency_key: str = Field(description="Same photo for the same SKU = same key.")


SkipKind = Literal["not_image", "bad_sku", "duplicate", "processed"]


class Skipped(BaseModel):
    """An object under the prefix that is not a new upload, and why."""

    key: str
    etag: str | None
    last_modified: datetime
    kind: SkipKind = Field(
        description="not_image and bad_sku need a person; the others are normal."
    )
    reason: str


def _token(item: Upload | Skipped | ObjectInfo) -> str:
    """One object version: its key plus ETag (or time, where there are no ETags)."""
    return f"{item.key}@{item.etag or item.last_modified.isoformat()}"


class UploadCursor(BaseModel):
    """How far the scans got: the newest object handled and the recent objects handled."""

    version: Literal[1] = 1
    last_modified: datetime | None = Field(default=None, description="Newest handled time.")
    key: str = Field(default="", description="Key of the newest handled object.")
    seen: dict[str, datetime] = Field(
        default_factory=dict, description="Objects handled within the look-back window."
    )

    @classmethod
    def load(cls, store: Store) -> UploadCursor:
        """The saved cursor; a fresh one (every upload is new) when there is none."""
        try:
            return cls.model_validate_json(store.get(CURSOR_KEY))
        except ObjectNotFoundError:
            return cls()
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise StorageError(
                f"{CURSOR_KEY} in {store.url} is not a valid upload cursor ({reason}); "
                "delete it to look at every upload again (processed ones are still skipped)"
            ) from None

    def save(self, store: Store) -> None:
        """Write the cursor in one atomic put."""
        store.put(CURSOR_KEY, self.model_dump_json(indent=1).encode(), "application/json")

    def horizon(self, lookback: timedelta = LOOKBACK) -> datetime | None:
        """Objects older than this were all handled; None before the first scan."""
        return None if self.last_modified is None else self.last_modified - lookback

    def is_handled(self, info: ObjectInfo, lookback: timedelta = LOOKBACK) -> bool:
        """Whether a scan can pass over this object without looking at it."""
        horizon = self.horizon(lookback)
        if horizon is not None and info.last_modified < horizon:
            return True
        return _token(info) in self.seen

    def advance(
        self,
        handled: Iterable[Upload | Skipped],
        lookback: timedelta = LOOKBACK,
        max_seen: int = MAX_SEEN,
    ) -> UploadCursor:
        """A new cursor that also covers `handled`; forgets what fell out of the window."""
        seen = dict(self.seen)
        newest = (self.last_modified, self.key) if self.last_modified else None
        for item in handled:
            seen[_token(item)] = item.last_modified
            if newest is None or (item.last_modified, item.key) > newest:
                newest = (item.last_modified, item.key)
        if newest is None:
            return self.model_copy()
        horizon = newest[0] - lookback
        recent = sorted(((at, t) for t, at in seen.items() if at >= horizon), reverse=True)
        return UploadCursor(
            last_modified=newest[0],
            key=newest[1],
            seen={token: at for at, token in recent[:max_seen]},
        )


def _candidates(
    store: Store, prefix: str, cursor: UploadCursor, lookback: timedelta
) -> list[ObjectInfo]:
    """Objects under `prefix` the cursor has not handled, oldest first."""
    fresh = [info for info in store.list_info(prefix) if not cursor.is_handled(info, lookback)]
    return sorted(fresh, key=lambda info: (info.last_modified, info.key))


@dataclass
class _Scan:
    """One scan's bookkeeping."""

    store: Store
    prefix: str
    uploads: list[Upload] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> first object key

    def skip(self, info: ObjectInfo, kind: SkipKind, reason: str) -> None:
        self.skipped.append(
            Skipped(
                key=info.key,
                etag=info.etag,
                last_modified=info.last_modified,
                kind=kind,
                reason=reason,
            )
        )

    def look_at(self, listed: ObjectInfo) -> None:
        """Turn one unseen object into an upload or a skip."""
        if not listed.key.lower().endswith(IMAGE_SUFFIXES):
            self.skip(listed, "not_image", "not an image file name")
            return
        try:
            info = self.store.head(listed.key)  # listings carry no metadata
        except ObjectNotFoundError:
            return  # deleted since the listing: nothing to make, nothing to remember
        try:
            sku = sku_from_key(info.key, self.prefix, info.metadata)
        except InvalidSkuError as error:
            self.skip(info, "bad_sku", str(error))
            return
        data = None if info.etag else self.store.get(info.key)
        key = idempotency_key(sku, info.etag, data)
        if key in self.keys:
            self.skip(info, "duplicate", f"same photo as {self.keys[key]}")
        elif self.store.exists(processed_key(key)):
            self.skip(info, "processed", f"already processed ({processed_key(key)})")
        else:
            self.keys[key] = info.key
            self.uploads.append(self._upload(info, sku, key))

    def _upload(self, info: ObjectInfo, sku: str, key: str) -> Upload:
        return Upload(
            sku=sku,
            source_url=object_location(self.store, info.key),
            key=info.key,
            etag=info.etag,
            size=info.size,
            last_modified=info.last_modified,
            idempotency_key=key,
        )


def scan_new_uploads(
    store: Store,
    prefix: str,
    cursor: UploadCursor,
    *,
    limit: int | None = None,
    skipped: list[Skipped] | None = None,
    lookback: timedelta = LOOKBACK,
) -> list[Upload]:
    """Uploads under `prefix` the cursor has not seen, oldest first, at most `limit`.

    Objects that are not uploads (not images, no usable SKU, already processed, the same
    photo twice) are appended to `skipped` when a list is given; pass them with the uploads
    to `UploadCursor.advance` so the next scan does not look at them again.
    """
    scan = _Scan(store, prefix)
    for info in _candidates(store, prefix, cursor, lookback):
        if limit is not None and len(scan.uploads) >= limit:
            break
        scan.look_at(info)
    if skipped is not None:
        skipped.extend(scan.skipped)
    return scan.uploads


class UploadMarker(BaseModel):
    """The content of `_state/processed/<idempotency key>`."""

    state: Literal["claimed", "done"]
    at: datetime
    run_id: str = ""
    detail: str = ""


def _marker_bytes(state: Literal["claimed", "done"], run_id: str, detail: str = "") -> bytes:
    marker = UploadMarker(state=state, at=datetime.now(UTC), run_id=run_id, detail=detail)
    return marker.model_dump_json().encode()


def _read_marker(store: Store, key: str) -> UploadMarker | None:
    try:
        return UploadMarker.model_validate_json(store.get(key))
    except (ObjectNotFoundError, ValidationError):
        return None


def claim_upload(
    store: Store, key: str, run_id: str, *, stale_after: timedelta = CLAIM_TIMEOUT
) -> bool:
    """Claim an upload for this run; False when it is done or another live run has it.

    The claim is a conditional put, so of two runs started for the same upload only one
    gets it. A claim older than `stale_after` is taken over (its run died).
    """
    marker = processed_key(key)
    if store.put_if_absent(marker, _marker_bytes("claimed", run_id), "application/json"):
        return True
    existing = _read_marker(store, marker)
    if existing is not None and (
        existing.state == "done" or datetime.now(UTC) - existing.at < stale_after
    ):
        return False
    store.put(marker, _marker_bytes("claimed", run_id), "application/json")
    return True


def finish_upload(store: Store, key: str, run_id: str, detail: str = "") -> None:
    """Mark an upload made: later triggers for it do nothing."""
    store.put(processed_key(key), _marker_bytes("done", run_id, detail), "application/json")


def release_upload(store: Store, key: str) -> None:
    """Give a claim back after a failed run, so the upload can be tried again."""
    store.delete(processed_key(key))


@dataclass(frozen=True)
class StoreCatalog:
    """A catalog of the products already in a store, written for a refresh run."""

    location: str
    products: int
    unreadable: list[str]


def write_store_catalog(store: Store) -> StoreCatalog:
    """Write `_state/refresh-catalog.json`: every product with a manifest, from its source.

    Each row keeps the platforms the product was made for. Prompt fields (name, category...)
    are not in manifests: point the refresh at the real catalog when they matter.
    """
    rows: list[dict[str, object]] = []
    unreadable: list[str] = []
    for key in store.list():
        sku = key.partition("/")[0]
        if classify(key) != "manifest":
            continue
        try:
            manifest = Manifest.model_validate_json(store.get(key))
        except (ValidationError, ObjectNotFoundError):
            unreadable.append(key)
            continue
        platforms = sorted({output.platform for output in manifest.outputs})
        rows.append({"sku": sku, "source": manifest.source.key, "platforms": platforms})
    data = json.dumps({"products": rows}, indent=1).encode()
    store.put(REFRESH_CATALOG_KEY, data, "application/json")
    return StoreCatalog(object_location(store, REFRESH_CATALOG_KEY), len(rows), unreadable)
