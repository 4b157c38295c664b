"""The store layout: every key a run writes has one kind, and gc/verify read products by it."""

from datetime import UTC, datetime

import pytest

from product_images.gc import find_orphans, verify_published
from product_images.locks import store_lock
from product_images.manifest import Manifest
from product_images.request import ProductRequest
from product_images.runner import make_product
from product_images.settings import Settings
from product_images.store import LocalStore, layout
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer
from product_images.thumbnails import ensure_thumbnail
from product_images.uploads import UploadCursor, claim_upload, write_store_catalog
from product_images.wiring import wire

SHA = "0123456789ab" + "f" * 52


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (layout.manifest_key("SKU-1"), "manifest"),
        (layout.master_key("SKU-1", "white", SHA), "versioned"),
        (layout.output_key("SKU-1", "amazon", "main.jpg", SHA), "versioned"),
        ("SKU-1/amazon/main.jpg", "stable"),
        (layout.cache_keys("ab" * 32)[0], "cache"),
        (layout.cache_keys("ab" * 32)[1], "cache"),
        (layout.ledger_key(datetime(2026, 1, 2, tzinfo=UTC), "abcd"), "ledger"),
        (layout.budget_entry_key("run-1", 7), "budget"),
        (layout.budget_head_key("run-1"), "budget"),
        (layout.lock_key("gen-abc"), "lock"),
        (layout.status_key("SKU-1"), "status"),
        (layout.processed_key("SKU-1/etag-abc"), "state"),
        (layout.CURSOR_KEY, "state"),
        (layout.REFRESH_CATALOG_KEY, "state"),
        (layout.thumbnail_key("SKU-1", "white", SHA), "thumbnail"),
        # Bookkeeping that looks like a product is still bookkeeping: gc never touches it.
        ("_thumbs/SKU-1/white.0123456789ab.jpg", "thumbnail"),
        ("photo.jpg", "other"),
        ("incoming/SKU-1.jpg", "other"),
        ("_unknown/x", "other"),
    ],
)
def test_every_key_function_has_its_kind(key, kind):
    assert layout.classify(key) == kind
    assert layout.is_bookkeeping(key) == key.startswith("_")
    assert (layout.sku_of(key) == "SKU-1") == (kind in ("manifest", "versioned", "stable"))


def test_versioned_and_stable_keys_round_trip():
    key = layout.output_key("SKU-1", "amazon", "main.jpg", SHA)
    assert key == "SKU-1/amazon/main.0123456789ab.jpg"
    assert layout.stable_key(key) == "SKU-1/amazon/main.jpg"
    assert layout.stable_key("SKU-1/amazon/main.jpg") is None


@pytest.fixture(scope="module")
def server():
    with StandinServer(api_key="sk-test-layout") as running:
        yield running


def test_every_key_a_full_run_writes_is_classified(server, tmp_path):
    """A generative run with a budget, then what flows add: thumbnails, the refresh catalog,
    an upload's claim and cursor, and a lock held while we look."""
    settings = Settings(
        store=str(tmp_path / "out"), backend="gemini", gemini_api_key=server.api_key,
        gemini_base_url=server.url, master_side=512, processes=0,
    )  # fmt: skip
    store = LocalStore(tmp_path / "out")
    draw_product(size=(500, 400))[0].save(tmp_path / "p.jpg")
    request = ProductRequest(
        sku="SKU-1", source=str(tmp_path / "p.jpg"), platforms=["amazon"],
        run_id="run-1", budget_usd=5.0,
    )  # fmt: skip
    assert make_product(request, wire(settings, store)).status == "done"
    manifest = Manifest.model_validate_json(store.get(layout.manifest_key("SKU-1")))
    for record in [*manifest.masters, *manifest.outputs]:
        ensure_thumbnail(store, "SKU-1", record)
    write_store_catalog(store)
    claim_upload(store, "SKU-1/etag-abc", "run-1")
    UploadCursor().save(store)
    with store_lock(store, "gen-abc"):
        kinds = {key: layout.classify(key) for key in store.list()}
    assert [key for key, kind in kinds.items() if kind == "other"] == []
    assert set(kinds.values()) == set(layout.BOOKKEEPING.values()) | {
        "manifest",
        "versioned",
        "stable",
    }
    assert verify_published(store) == [] and find_orphans(store, 0).orphans == []
