"""A catalog through a flaky generative API into a real S3 server: every product completes,
nothing is paid twice, nothing is published half-written.

The stand-in answers 30% of generate calls 429/503 (a third of the 429s with RetryInfo), lets
5% time out and 2% come back malformed or without an image. The circuit breaker may open on a
run of failures; its products are deferred and Prefect retries them after the cool-down.

Under heavy throttling (40% 429 + 20% 503) the breaker stays closed and every product still
completes; under an outage (100% 503) it opens after a handful of calls, every product is
deferred, nothing is paid and nothing is published.

The soak variant (2,000 products) runs only with PRODUCT_IMAGES_SOAK=1.
"""

import os
import time
from collections import Counter

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

from product_images.flows.process_catalog import catalog_flow
from product_images.gc import find_orphans, verify_published
from product_images.generative.breaker import breaker_for, reset_breakers
from product_images.generative.ledger import Ledger
from product_images.manifest import Manifest
from product_images.settings import Settings
from product_images.store.layout import CACHE
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer

FAULT_RATES = {
    "429": 0.10,
    "429-retryinfo:0.05s": 0.05,
    "503": 0.15,
    "timeout": 0.05,
    "malformed": 0.01,
    "text-only": 0.01,
}
OUTAGE_PRODUCTS = 24
THROTTLED_RATES = {"429": 0.25, "429-retryinfo:0.05s": 0.15, "503": 0.20}  # 60% fail
SOAK = pytest.mark.skipif(
    os.environ.get("PRODUCT_IMAGES_SOAK") != "1", reason="soak: set PRODUCT_IMAGES_SOAK=1"
)


def _catalog(tmp_path, count):
    photos = tmp_path / "photos"
    photos.mkdir()
    colours = [(150, 40, 40), (40, 120, 60), (40, 60, 160), (160, 120, 30)]
    for n in range(len(colours)):
        draw_product(size=(260, 220), colour=colours[n])[0].save(photos / f"{n}.jpg")
    # distinct products (their own SKU and name, so their own prompts and generations)
    rows = [f"F{n:04d},{photos / f'{n % len(colours)}.jpg'},Item {n}" for n in range(count)]
    path = tmp_path / "catalog.csv"
    path.write_text("sku,source,name\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def flaky_api(monkeypatch):
    reset_breakers()
    with StandinServer(api_key="flaky-key", hang_seconds=2.0, seed=7) as server:
        server.set_fault_rates(FAULT_RATES)
        for name, value in {
            "GEMINI_API_KEY": server.api_key,
            "PRODUCT_IMAGES_BACKEND": "gemini",
            "PRODUCT_IMAGES_GEMINI_BASE_URL": server.url,
            "PRODUCT_IMAGES_MASTER_SIDE": "256",
            "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE": "512",  # 2K answers would time out under load
            "PRODUCT_IMAGES_REQUEST_TIMEOUT": "0.5",
            "PRODUCT_IMAGES_RETRY_BASE_DELAY": "0.01",
            "PRODUCT_IMAGES_RETRY_MAX_DELAY": "0.1",
            "PRODUCT_IMAGES_MAX_ATTEMPTS": "4",
            "PRODUCT_IMAGES_BREAKER_COOLDOWN": "0.5",
            "PRODUCT_IMAGES_DEFER_RETRIES": "8",
            "PRODUCT_IMAGES_GEMINI_RPM": "60000",  # the breaker and retries are under test
            "PRODUCT_IMAGES_GEMINI_CONCURRENCY": "16",
            "PRODUCT_IMAGES_THREADS": "1",
        }.items():
            monkeypatch.setenv(name, value)
        yield server
    reset_breakers()


def _run(count, tmp_path, s3_store):
    return catalog_flow(None, concurrency=8)(
        catalog=str(_catalog(tmp_path, count)), platforms=["pinduoduo"], store=s3_store.url
    )


def _breaker(server):
    """The breaker the run's client used (the configured model, the fixture's thresholds)."""
    return breaker_for("gemini", server.url, Settings().generation.gemini_model, 5, 0.5)


def _run_and_check(
    count, tmp_path, s3_store, server, failed=("rate_limited", "upstream_error", "timeout")
):
    summary = _run(count, tmp_path, s3_store)
    statuses = Counter(r.status for r in summary.results)
    assert statuses == {"done": count}, [r for r in summary.results if r.status != "done"][:5]

    entries = Ledger(s3_store).entries()
    generations = [(e.sku, e.variant) for e in entries if e.outcome == "ok"]
    manifests = [
        Manifest.model_validate_json(s3_store.get(f"F{n:04d}/manifest.json")) for n in range(count)
    ]
    generated = {(m.sku, g.variant) for m in manifests for g in m.masters if g.generated_by}
    assert set(generations) == generated  # every generated master was paid for...
    cached = [k for k in s3_store.list(CACHE) if k.endswith(".json")]
    assert len(generations) == len(cached)  # ...and each take (regenerations too) once
    assert server.calls == len(entries)  # every attempt that reached the API is in the ledger
    failures = Counter(e.outcome for e in entries if e.outcome != "ok")
    assert all(failures[outcome] for outcome in failed), failures

    assert verify_published(s3_store) == []  # every listed object there, checksums match
    assert find_orphans(s3_store, grace_seconds=0).orphans == []  # no duplicate outputs
    tries = _task_tries()
    print(  # the figures for the record (pytest -s shows them)
        f"\n{count} products: {dict(statuses)}; retried by Prefect after a deferral: "
        f"{sum(t > 1 for t in tries)} products ({sum(tries) - len(tries)} retries); "
        f"API calls {server.calls} = ledger entries {len(entries)} = "
        f"{len(generations)} generations ({len(generated)} masters) + "
        f"{sum(failures.values())} failed attempts "
        f"{dict(failures)}; manifests verified {count}, problems 0, orphans 0"
    )
    return summary, entries


def _task_tries() -> list[int]:
    where = TaskRunFilter(name=TaskRunFilterName(like_="product-F"))
    tries: list[int] = []
    with get_client(sync_client=True) as client:
        while page := client.read_task_runs(task_run_filter=where, limit=200, offset=len(tries)):
            tries += [run.run_count for run in page]
    return tries


@pytest.mark.s3
def test_200_products_through_a_flaky_api_all_complete(flaky_api, tmp_path, s3_store, s3_env):
    _run_and_check(200, tmp_path, s3_store, flaky_api)


@pytest.mark.s3
def test_throttling_never_opens_the_breaker_and_every_product_completes(
    flaky_api, tmp_path, s3_store, s3_env
):
    flaky_api.set_fault_rates(THROTTLED_RATES)
    _run_and_check(40, tmp_path, s3_store, flaky_api, failed=("rate_limited", "upstream_error"))
    assert _breaker(flaky_api).opened == 0  # 429s say "slow down", not "down"


@pytest.mark.s3
def test_an_outage_defers_every_product_quickly_and_pays_nothing(
    flaky_api, tmp_path, s3_store, s3_env, monkeypatch
):
    flaky_api.set_fault_rates({"503": 1.0})
    monkeypatch.setenv("PRODUCT_IMAGES_DEFER_RETRIES", "1")  # a retry meets the outage too
    started = time.monotonic()
    summary = _run(OUTAGE_PRODUCTS, tmp_path, s3_store)
    seconds = time.monotonic() - started
    assert Counter(r.status for r in summary.results) == {"deferred": OUTAGE_PRODUCTS}
    entries = Ledger(s3_store).entries()
    assert _few_calls(flaky_api.calls, _breaker(flaky_api).opened)
    assert [e for e in entries if e.outcome == "ok"] == [] and len(entries) == flaky_api.calls
    assert [k for k in s3_store.list("") if k.endswith("manifest.json")] == []
    assert list(s3_store.list(CACHE)) == []
    print(
        f"\noutage: {OUTAGE_PRODUCTS} products deferred in {seconds:.1f}s; "
        f"{flaky_api.calls} API calls, breaker opened {_breaker(flaky_api).opened} times"
    )


def _few_calls(calls, opened):
    """An open breaker makes no calls: the ones before it first opened (its 5 failures and the
    attempts already in flight, at most the 16 allowed at once) and one probe per reopening."""
    return calls <= 5 + 16 + opened


@SOAK
@pytest.mark.s3
def test_soak_2000_products_through_a_flaky_api(flaky_api, tmp_path, s3_store, s3_env):
    _run_and_check(2000, tmp_path, s3_store, flaky_api)
