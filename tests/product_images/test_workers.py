"""Pixel worker processes: work runs elsewhere, errors come back typed, a dead worker fails
one product only, and a product comes out the same with or without workers."""

import os

import pytest

from product_images.errors import CorruptImageError, RenderError, UnsupportedImageError
from product_images.manifest import Manifest
from product_images.pipeline import _decode_and_cut
from product_images.preload import warm_up
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.store import LocalStore
from product_images.wiring import wire
from product_images.workers import pixel_pool, shutdown_pools


@pytest.fixture(scope="module")
def pool():
    yield pixel_pool(2, warm_up)
    shutdown_pools()


def test_work_runs_in_another_process(pool):
    assert pool.run(os.getpid) != os.getpid()


def test_a_product_error_comes_back_as_itself(pool):
    request = ProductRequest(sku="S", source="bad.jpg", platforms=["amazon"])
    with pytest.raises((CorruptImageError, UnsupportedImageError)) as raised:
        pool.run(_decode_and_cut, b"not an image", request, Settings())
    assert raised.value.source == "bad.jpg" and "bad.jpg" in str(raised.value)


def test_a_dead_worker_fails_one_call_and_the_pool_starts_afresh(pool):
    with pytest.raises(RenderError, match="pixel worker process died"):
        pool.run(os._exit, 3)
    assert pool.run(os.getpid) != os.getpid()


def test_a_product_is_the_same_with_or_without_workers(photo, tmp_path):
    outputs = {}
    for processes in (0, 2):
        store = LocalStore(tmp_path / f"p{processes}")
        settings = Settings(store=str(store.root), processes=processes)
        request = ProductRequest(sku="SKU-1", source=str(photo), platforms=["amazon"])
        assert run_product(request, wire(settings, store)).status == "done"
        manifest = Manifest.model_validate_json(store.get("SKU-1/manifest.json"))
        outputs[processes] = sorted((o.key, o.sha256) for o in manifest.outputs)
    assert outputs[0] == outputs[2]
