"""Finding uploads by polling: local folders and S3 (SeaweedFS) behave the same."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from product_images.errors import InvalidSkuError, StorageError
from product_images.manifest import Manifest, OutputRecord, SourceInfo
from product_images.store import LocalStore, ObjectInfo, S3Store, Store, read_url
from product_images.store.s3 import S3Client
from product_images.uploads import (
    CURSOR_KEY,
    REFRESH_CATALOG_KEY,
    Skipped,
    Upload,
    UploadCursor,
    UploadMarker,
    claim_upload,
    finish_upload,
    idempotency_key,
    processed_key,
    release_upload,
    scan_new_uploads,
    sku_from_key,
    write_store_catalog,
)

PREFIX = "incoming/"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    s3: Store = request.getfixturevalue("s3_store")
    return s3


def _scan(
    store: Store, cursor: UploadCursor, limit: int | None = None
) -> tuple[list[Upload], list[Skipped]]:
    skipped: list[Skipped] = []
    uploads = scan_new_uploads(store, PREFIX, cursor, limit=limit, skipped=skipped)
    return uploads, skipped


def _client(store: Store) -> S3Client | None:
    return store.client if isinstance(store, S3Store) else None


def _look_and_save(store: Store) -> list[Upload]:
    """What the sensor does: load, scan, (emit,) advance, save."""
    cursor = UploadCursor.load(store)
    uploads, skipped = _scan(store, cursor)
    cursor.advance([*uploads, *skipped]).save(store)
    return uploads


@pytest.mark.parametrize(
    ("key", "sku"),
    [
        ("incoming/SKU-1.jpg", "SKU-1"),
        ("incoming/sku.v2.png", "sku.v2"),
        ("incoming/SKU-1/front.jpg", "SKU-1"),
        ("incoming/SKU-1/IMG 0001.JPEG", "SKU-1"),
    ],
)
def test_sku_from_key(key: str, sku: str) -> None:
    assert sku_from_key(key, PREFIX) == sku


@pytest.mark.parametrize(
    "key",
    [
        "incoming/a/b/c.jpg",
        "incoming/../x.jpg",
        "incoming/bad sku.jpg",
        "other/SKU.jpg",
        "incoming/.jpg",
    ],
)
def test_sku_from_key_refuses(key: str) -> None:
    with pytest.raises(InvalidSkuError):
        sku_from_key(key, PREFIX)


def test_sku_from_metadata_wins_and_is_checked() -> None:
    assert sku_from_key("incoming/a/b/c.jpg", PREFIX, {"sku": "META-1"}) == "META-1"
    assert sku_from_key("incoming/x.jpg", PREFIX, {"Sku": " META-2 "}) == "META-2"  # rclone style
    assert sku_from_key("incoming/x.jpg", PREFIX, {"sku": ""}) == "x"
    with pytest.raises(InvalidSkuError):
        sku_from_key("incoming/x.jpg", PREFIX, {"sku": "../etc"})


def test_idempotency_key_forms() -> None:
    assert idempotency_key("S-1", "9b2cf535f27731c974343645a3985328") == (
        "S-1/etag-9b2cf535f27731c974343645a3985328"
    )
    assert idempotency_key("S-1", "abc-3") == "S-1/etag-abc-3"  # multipart
    odd = idempotency_key("S-1", "a/b:c")
    assert odd.startswith("S-1/etag-") and "/" not in odd.removeprefix("S-1/")
    digest = hashlib.sha256(b"photo").hexdigest()
    assert idempotency_key("S-1", None, b"photo") == f"S-1/sha256-{digest}"
    with pytest.raises(ValueError, match="bytes"):
        idempotency_key("S-1", None)


def test_scan_finds_uploads_once(store: Store) -> None:
    store.put("incoming/SKU-1.jpg", b"one", "image/jpeg")
    store.put("incoming/SKU-2/front.png", b"two", "image/png")
    store.put("SKU-0/manifest.json", b"{}")  # outside the prefix: not an upload

    first = _look_and_save(store)

    assert sorted(u.sku for u in first) == ["SKU-1", "SKU-2"]
    by_sku = {u.sku: u for u in first}
    assert read_url(by_sku["SKU-1"].source_url, client=_client(store)) == b"one"
    assert by_sku["SKU-2"].key == "incoming/SKU-2/front.png"
    assert by_sku["SKU-2"].size == 3
    if isinstance(store, S3Store):
        assert by_sku["SKU-1"].etag == hashlib.md5(b"one").hexdigest()
        assert by_sku["SKU-1"].idempotency_key == f"SKU-1/etag-{by_sku['SKU-1'].etag}"
        assert by_sku["SKU-1"].source_url == f"s3://{store.bucket}/incoming/SKU-1.jpg"
    else:
        assert by_sku["SKU-1"].etag is None
        assert by_sku["SKU-1"].idempotency_key.startswith("SKU-1/sha256-")
    assert store.exists(CURSOR_KEY)

    assert _look_and_save(store) == []
    store.put("incoming/SKU-3.webp", b"three", "image/webp")
    assert [u.sku for u in _look_and_save(store)] == ["SKU-3"]
    assert _look_and_save(store) == []


def test_a_crash_before_the_cursor_is_saved_repeats_never_misses(store: Store) -> None:
    store.put("incoming/SKU-1.jpg", b"one")
    cursor = UploadCursor.load(store)
    found, _ = _scan(store, cursor)
    # ... events emitted, then the process dies before `save`:
    again, _ = _scan(store, UploadCursor.load(store))
    assert [u.idempotency_key for u in again] == [u.idempotency_key for u in found]


def test_non_uploads_are_reported_once(store: Store) -> None:
    store.put("incoming/notes.txt", b"hello")
    store.put("incoming/bad sku.jpg", b"x")
    store.put("incoming/a/b/c.jpg", b"y")
    store.put("incoming/SKU-1.jpg", b"photo")
    store.put("incoming/SKU-1/same.jpg", b"photo")  # the same photo for the same SKU

    cursor = UploadCursor.load(store)
    uploads, skipped = _scan(store, cursor)

    assert [u.sku for u in uploads] == ["SKU-1"]  # one of the two copies
    kinds = {s.key: s.kind for s in skipped}
    assert kinds["incoming/notes.txt"] == "not_image"
    assert kinds["incoming/bad sku.jpg"] == "bad_sku"
    assert kinds["incoming/a/b/c.jpg"] == "bad_sku"
    assert "duplicate" in kinds.values()
    cursor.advance([*uploads, *skipped]).save(store)
    assert _scan(store, UploadCursor.load(store)) == ([], [])


def test_processed_uploads_are_not_announced_again(store: Store) -> None:
    """Even with a lost cursor, a photo whose marker exists is skipped."""
    store.put("incoming/SKU-1.jpg", b"one")
    [upload] = _look_and_save(store)
    finish_upload(store, upload.idempotency_key, run_id="r1")
    store.delete(CURSOR_KEY)

    uploads, skipped = _scan(store, UploadCursor.load(store))

    assert uploads == []
    assert [(s.key, s.kind) for s in skipped] == [("incoming/SKU-1.jpg", "processed")]


def test_limit_leaves_the_rest_for_the_next_scan(store: Store) -> None:
    for number in range(5):
        store.put(f"incoming/SKU-{number}.jpg", f"photo {number}".encode())
    seen: list[str] = []
    for _ in range(3):
        cursor = UploadCursor.load(store)
        uploads, skipped = _scan(store, cursor, limit=2)
        seen += [u.sku for u in uploads]
        cursor.advance([*uploads, *skipped]).save(store)
    assert sorted(seen) == [f"SKU-{n}" for n in range(5)]


class _ClockStore(LocalStore):
    """A local store whose objects carry the times the test gives them (like S3's)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.times: dict[str, datetime] = {}

    def head(self, key: str) -> ObjectInfo:
        info = super().head(key)
        return ObjectInfo(key, info.size, self.times[key], info.etag, info.metadata)


def test_late_arrivals_within_the_look_back_are_found(tmp_path: Path) -> None:
    """A multipart upload keeps its start time: it can show up after newer objects."""
    store = _ClockStore(tmp_path)
    noon = datetime(2026, 5, 1, 12, tzinfo=UTC)
    store.times["incoming/NEW.jpg"] = noon
    store.put("incoming/NEW.jpg", b"new")
    assert [u.sku for u in _look_and_save(store)] == ["NEW"]

    store.times["incoming/BIG.jpg"] = noon - timedelta(minutes=10)  # started earlier
    store.put("incoming/BIG.jpg", b"big")
    store.times["incoming/ANCIENT.jpg"] = noon - timedelta(hours=2)  # behind the window
    store.put("incoming/ANCIENT.jpg", b"old")

    assert [u.sku for u in _look_and_save(store)] == ["BIG"]
    assert _look_and_save(store) == []


def test_cursor_forgets_what_left_the_window_and_stays_bounded() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)

    def skipped(minute: int) -> Skipped:
        at = start + timedelta(minutes=minute)
        return Skipped(
            key=f"incoming/{minute}.txt", etag="e", last_modified=at, kind="not_image", reason=""
        )

    cursor = UploadCursor().advance([skipped(m) for m in range(0, 60, 5)])
    assert cursor.last_modified == start + timedelta(minutes=55)
    assert cursor.key == "incoming/55.txt"
    assert len(cursor.seen) == 4  # minutes 40..55: the 15-minute look-back
    assert len(UploadCursor().advance([skipped(m) for m in range(10)], max_seen=3).seen) == 3
    older = cursor.advance([skipped(1)])
    assert older.last_modified == cursor.last_modified  # an old object never moves it back


def test_cursor_round_trip_and_corruption(store: Store) -> None:
    assert UploadCursor.load(store) == UploadCursor()
    at = datetime(2026, 5, 1, tzinfo=UTC)
    item = Skipped(key="incoming/x.txt", etag=None, last_modified=at, kind="not_image", reason="")
    cursor = UploadCursor().advance([item])
    cursor.save(store)
    assert UploadCursor.load(store) == cursor
    assert json.loads(store.get(CURSOR_KEY))["key"] == "incoming/x.txt"
    store.put(CURSOR_KEY, b"{not json")
    with pytest.raises(StorageError, match="delete it"):
        UploadCursor.load(store)


def test_local_time_is_arrival_not_a_copied_mtime(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("incoming/SKU-1.jpg", b"x")
    path = tmp_path / "incoming" / "SKU-1.jpg"
    os.utime(path, (978_307_200, 978_307_200))  # 2001, as `cp -p` would keep it
    info = store.head("incoming/SKU-1.jpg")
    assert datetime.now(UTC) - info.last_modified < timedelta(minutes=5)


@pytest.mark.s3
def test_s3_metadata_names_the_sku(s3_store: S3Store) -> None:
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key="incoming/DSC_0042.jpg", Body=b"x", Metadata={"sku": "META-7"}
    )
    [upload] = _look_and_save(s3_store)
    assert upload.sku == "META-7"
    assert upload.idempotency_key.startswith("META-7/etag-")


def test_claims(store: Store) -> None:
    key = "SKU-1/etag-abc"
    assert claim_upload(store, key, "run-1")
    assert not claim_upload(store, key, "run-2")  # in progress elsewhere
    release_upload(store, key)  # run-1 failed
    assert claim_upload(store, key, "run-3")
    finish_upload(store, key, "run-3", detail="done")
    assert not claim_upload(store, key, "run-4")
    marker = UploadMarker.model_validate_json(store.get(processed_key(key)))
    assert (marker.state, marker.run_id, marker.detail) == ("done", "run-3", "done")


def test_a_stale_claim_is_taken_over(store: Store) -> None:
    key = "SKU-1/etag-abc"
    dead = UploadMarker(state="claimed", at=datetime.now(UTC) - timedelta(hours=3), run_id="dead")
    store.put(processed_key(key), dead.model_dump_json().encode())
    assert claim_upload(store, key, "alive")
    assert UploadMarker.model_validate_json(store.get(processed_key(key))).run_id == "alive"


def _manifest(sku: str, source: str, platforms: list[str]) -> bytes:
    outputs = [
        OutputRecord(
            platform=p,
            slot="main",
            variant="white",
            key=f"{sku}/{p}/main.jpg",
            width=1,
            height=1,
            format="jpeg",
            bytes=1,
            sha256="0",
            checks=[],
        )
        for p in platforms
    ]
    source_info = SourceInfo(key=source, sha256="0", width=1, height=1, format="JPEG")
    manifest = Manifest(
        sku=sku, backend="local", code_version="0", source=source_info, masters=[], outputs=outputs
    )
    return manifest.model_dump_json().encode()


def test_store_catalog_lists_every_product(store: Store) -> None:
    store.put("A-1/manifest.json", _manifest("A-1", "s3://photos/a.jpg", ["amazon", "shopify"]))
    store.put("B-2/manifest.json", _manifest("B-2", "/photos/b.jpg", []))
    store.put("C-3/manifest.json", b"{broken")
    store.put("A-1/amazon/main.jpg", b"x")
    store.put("_state/processed/A-1/manifest.json", b"{}")  # bookkeeping is never a product

    written = write_store_catalog(store)

    assert (written.products, written.unreadable) == (2, ["C-3/manifest.json"])
    rows = json.loads(store.get(REFRESH_CATALOG_KEY))["products"]
    assert rows == [
        {"sku": "A-1", "source": "s3://photos/a.jpg", "platforms": ["amazon", "shopify"]},
        {"sku": "B-2", "source": "/photos/b.jpg", "platforms": []},
    ]
    assert json.loads(read_url(written.location, client=_client(store))) == {"products": rows}
