"""Atomic publishing: checksummed keys, manifest last, stable copies after, orphans collected."""

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from product_images.errors import StorageError
from product_images.gc import collect_garbage, find_orphans
from product_images.manifest import Manifest, stable_key, versioned_key
from product_images.pipeline import prepare_masters, render_slots
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.store import LocalStore
from product_images.testing.fixtures.images import draw_product
from product_images.wiring import wire

PLATFORMS = ["amazon", "instagram"]


def _request(photo, sku="SKU-1"):
    return ProductRequest(sku=sku, source=str(photo), platforms=PLATFORMS)


def _settings(store, **extra):
    return Settings(store=store.url, master_side=512, **extra)


def _manifest(store, sku="SKU-1"):
    return Manifest.model_validate_json(store.get(f"{sku}/manifest.json"))


def _assert_consistent(store, manifest):
    for key, sha in manifest.published_keys().items():
        assert hashlib.sha256(store.get(key)).hexdigest() == sha, key


@pytest.mark.parametrize(
    ("stable", "sha", "versioned"),
    [
        ("S/amazon/main.jpg", "ab" * 32, "S/amazon/main.abababababab.jpg"),
        ("S/masters/cutout.png", "0123456789ab" * 5 + "abcd", "S/masters/cutout.0123456789ab.png"),
        ("S/etsy/1.png", "f" * 64, "S/etsy/1.ffffffffffff.png"),
    ],
)
def test_versioned_and_stable_keys_round_trip(stable, sha, versioned):
    assert versioned_key(stable, sha) == versioned
    assert stable_key(versioned) == stable


@pytest.mark.parametrize("key", ["S/manifest.json", "S/amazon/main.jpg", "photos/a.b.jpg"])
def test_keys_without_a_checksum_have_no_stable_key(key):
    assert stable_key(key) is None


def test_manifest_lists_checksummed_keys_whose_bytes_match(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    assert run_product(_request(photo), wire(_settings(store), store)).status == "done"
    manifest = _manifest(store)
    keys = manifest.published_keys()
    assert all(stable_key(key) for key in keys)
    assert {m.variant for m in manifest.masters} == {"white", "scene", "detail"}
    _assert_consistent(store, manifest)


def test_stable_copies_match_the_published_objects(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    run_product(_request(photo), wire(_settings(store), store))
    for key in _manifest(store).published_keys():
        assert store.get(stable_key(key)) == store.get(key)
    assert store.exists("SKU-1/amazon/main.jpg") and store.exists("SKU-1/masters/cutout.png")


def test_stable_copies_can_be_turned_off(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    run_product(_request(photo), wire(_settings(store, stable_keys=False), store))
    assert not store.exists("SKU-1/amazon/main.jpg")
    _assert_consistent(store, _manifest(store))


def test_cutout_master_is_rgba_on_the_upright_source_grid(tmp_path):
    image, mask = draw_product(size=(640, 480))
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways (480 x 640); shown turned clockwise, as drawn
    image.rotate(90, expand=True).save(path, exif=exif, quality=95)
    store = LocalStore(tmp_path / "out")
    run_product(_request(path), wire(_settings(store), store))
    record = _manifest(store).cutout
    assert record is not None and (record.width, record.height) == (640, 480)
    cutout = Image.open(io.BytesIO(store.get(record.key)))
    assert cutout.mode == "RGBA" and cutout.size == (640, 480)
    alpha = np.asarray(cutout.getchannel("A")) >= 128
    iou = (alpha & mask).sum() / (alpha | mask).sum()
    assert iou > 0.9


def test_a_run_that_dies_before_its_manifest_leaves_the_published_set_intact(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    settings = _settings(store)
    run_product(_request(photo), wire(settings, store))
    before = _manifest(store)
    other = tmp_path / "other.jpg"
    draw_product(size=(800, 800), colour=(30, 90, 200))[0].save(other)
    prepared = prepare_masters(_request(other), wire(settings, store))  # the crash comes before
    render_slots(prepared, wire(settings, store))  # the manifest is written
    assert _manifest(store) == before
    _assert_consistent(store, before)


def test_gc_finds_only_unlisted_checksummed_objects_and_removes_them_on_apply(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    settings = _settings(store)
    run_product(_request(photo), wire(settings, store))
    other = tmp_path / "other.jpg"
    draw_product(size=(800, 800), colour=(30, 90, 200))[0].save(other)
    prepared = prepare_masters(_request(other), wire(settings, store))
    leftovers = {m.key for m in prepared.masters} | {
        o.key for o in render_slots(prepared, wire(settings, store))
    }
    leftovers |= {prepared.cutout.key} if prepared.cutout else set()
    store.put("photos/SKU-1.abcdefabcdef.jpg", b"a user's photo")  # not a product folder
    store.put("photos/in/shoe.abcdefabcdef.jpg", b"a photo with a hash-like name")
    dry = collect_garbage(store, grace_seconds=0)
    assert {info.key for info in dry.orphans} == leftovers - set(_manifest(store).published_keys())
    assert all(store.exists(key) for key in leftovers)
    collect_garbage(store, grace_seconds=0, apply=True)
    assert not find_orphans(store, grace_seconds=0).orphans
    _assert_consistent(store, _manifest(store))
    assert store.exists("photos/SKU-1.abcdefabcdef.jpg") and store.exists("SKU-1/amazon/main.jpg")
    assert store.exists("photos/in/shoe.abcdefabcdef.jpg")


def test_gc_keeps_young_orphans_of_a_run_that_may_still_be_going(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    data = b"in flight"
    key = versioned_key("NEW-1/amazon/main.jpg", hashlib.sha256(data).hexdigest())
    store.put(key, data)
    report = find_orphans(store, grace_seconds=3600)
    assert report.orphans == [] and report.kept_young == 1
    assert [info.key for info in find_orphans(store, grace_seconds=0).orphans] == [key]


def test_gc_touches_nothing_of_a_product_whose_manifest_is_unreadable(tmp_path):
    store = LocalStore(tmp_path / "out")
    store.put("BAD/manifest.json", b"{not json")
    key = versioned_key("BAD/amazon/main.jpg", hashlib.sha256(b"x").hexdigest())
    store.put(key, b"x")
    report = collect_garbage(store, grace_seconds=0, apply=True)
    assert report.orphans == [] and report.unreadable_manifests == ["BAD/manifest.json"]
    assert store.exists(key)


class _FailingStore(LocalStore):
    """A store whose writes start failing after `ok_puts` of them, like a server going away."""

    def __init__(self, root, ok_puts):
        super().__init__(root)
        self.ok_puts = ok_puts

    def put(self, key, data, content_type="application/octet-stream"):
        if self.ok_puts <= 0:
            raise StorageError(f"S3 PutObject failed for {key}: EndpointConnectionError")
        self.ok_puts -= 1
        super().put(key, data, content_type)


@pytest.mark.parametrize("ok_puts", [0, 2, 6])
def test_a_store_failure_mid_product_defers_it_and_publishes_nothing(photo, tmp_path, ok_puts):
    store = _FailingStore(tmp_path / "out", ok_puts)
    result = run_product(_request(photo), wire(_settings(store), store))
    assert result.reason == "storage_unavailable" and "EndpointConnectionError" in result.message
    assert not store.exists("SKU-1/manifest.json")
