"""Refresh with the Gemini Batch API against the stand-in server: half price, same cache."""

import pytest

from product_images.batch_prefill import prefill_refresh
from product_images.generative.configured_model import price_table
from product_images.generative.ledger import Ledger
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.store import LocalStore
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer
from product_images.wiring import wire


@pytest.fixture(scope="module")
def server():
    with StandinServer(api_key="batch-key", batch_seconds=0.2) as running:
        yield running


@pytest.fixture
def products(tmp_path, server):
    server.reset()
    server.set_batch_fault(None)
    requests = []
    for n in range(3):
        photo = tmp_path / f"{n}.jpg"
        draw_product(size=(600, 450), colour=(40 + 60 * n, 90, 150))[0].save(photo)
        requests.append(ProductRequest(sku=f"B{n}", source=str(photo), platforms=["amazon"]))
    store = LocalStore(tmp_path / "out")
    settings = Settings(
        store=store.url,
        backend="gemini",
        gemini_api_key=server.api_key,
        gemini_base_url=server.url,
        master_side=512,
        retry_base_delay=0.0,
        batch_poll_initial=0.05,
        batch_poll_max=0.2,
        batch_timeout=30,
    )
    return requests, store, settings


def test_batch_fills_the_cache_at_half_price_and_the_run_pays_nothing_more(server, products):
    requests, store, settings = products
    report = prefill_refresh(requests, wire(settings, store))
    assert report.submitted == 6 and report.made == 6 and not report.left_for_sync
    results = [run_product(r, wire(settings, store)) for r in requests]
    assert [r.status for r in results] == ["done"] * 3
    assert sum(r.paid_calls for r in results) == 0
    entries = Ledger(store).entries()
    assert {e.backend for e in entries} == {"gemini-batch"} and len(entries) == 6
    price = price_table(settings)[settings.generation.gemini_model]
    full = price.cost(entries[0].prompt_tokens, entries[0].output_tokens)
    assert entries[0].cost_usd == pytest.approx(full / 2, rel=1e-3)


def test_an_expired_batch_falls_back_to_normal_calls(server, products):
    requests, store, settings = products
    server.set_batch_fault("expired")
    report = prefill_refresh(requests, wire(settings, store))
    assert report.made == 0 and report.left_for_sync
    results = [run_product(r, wire(settings, store)) for r in requests]
    assert [r.status for r in results] == ["done"] * 3
    assert sum(r.paid_calls for r in results) == 6


def test_per_request_errors_fall_back_one_by_one(server, products):
    requests, store, settings = products
    server.script("ok", "safety", "ok", "ok", "500", "ok")
    report = prefill_refresh(requests, wire(settings, store))
    assert report.made == 4 and len(report.left_for_sync) == 2
    results = [run_product(r, wire(settings, store)) for r in requests]
    assert sum(r.paid_calls for r in results) == 2
