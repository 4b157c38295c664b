"""The circuit breaker and deferral end to end: our clients against the stand-in server."""

import time
from pathlib import Path

import pytest

from product_images.generative.breaker import reset_breakers
from product_images.generative.ledger import Ledger
from product_images.manifest import Manifest
from product_images.request import ProductRequest
from product_images.runner import failed_result, run_product
from product_images.settings import Settings
from product_images.status import last_statuses
from product_images.store import LocalStore
from product_images.summary import CatalogSummary
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer
from product_images.wiring import wire

PLATFORMS = ["amazon"]
COOLDOWN = 0.4
LONG_COOLDOWN = 3.0


@pytest.fixture(scope="module")
def server():
    with StandinServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server):
    server.reset()
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def photos(tmp_path):
    paths = []
    for n in range(3):  # different photos: the cache must not make them free
        path = tmp_path / f"p{n}.jpg"
        draw_product(size=(500, 400), colour=(40 + 60 * n, 90, 150))[0].save(path)
        paths.append(path)
    return paths


def _settings(server, tmp_path, **extra) -> Settings:
    options = {
        "store": str(tmp_path / "out"),
        "backend": "gemini",
        "gemini_api_key": server.api_key,
        "gemini_base_url": server.url,
        "gemini_image_size": "512",
        "master_side": 512,
        "retry_base_delay": 0.0,
        "max_attempts": 2,
        "breaker_failures": 3,
        "breaker_cooldown": COOLDOWN,
        "defer_retries": 0,
        "threads": 1,  # detail, then scene: the order the stand-in's script is used in
        "gemini_rpm": 60_000,  # no waiting for the rate limit: only the breaker decides
    } | extra
    return Settings(**options)


def _run(settings, photo, sku):
    request = ProductRequest(sku=sku, source=str(photo), platforms=PLATFORMS)
    return run_product(request, wire(settings, LocalStore(Path(settings.store.url))))


def _ledger(settings):
    return [e.outcome for e in Ledger(LocalStore(Path(settings.store.url))).entries()]


def test_failures_open_the_breaker_products_are_deferred_then_complete(server, photos, tmp_path):
    # A cool-down longer than making P2's cut-out, so P2 finds the breaker still open.
    settings = _settings(server, tmp_path, breaker_cooldown=LONG_COOLDOWN)
    server.script("ok", "503", "503", "503")  # P0: detail made, scene fails twice; P1: once
    first = _run(settings, photos[0], "P0")
    assert (first.status, first.reason) == ("deferred", "upstream_error")
    second = _run(settings, photos[1], "P1")  # its failure is the third in a row: it opens
    assert (second.status, second.reason) == ("deferred", "backend_unavailable")
    calls = server.calls
    third = _run(settings, photos[2], "P2")  # the breaker is open: no call at all
    assert (third.status, third.reason) == ("deferred", "backend_unavailable")
    assert server.calls == calls == 4
    store = LocalStore(Path(settings.store.url))
    assert not any(store.exists(f"{sku}/manifest.json") for sku in ("P0", "P1", "P2"))

    time.sleep(LONG_COOLDOWN)  # then the probe goes through and closes the breaker
    results = [_run(settings, photo, f"P{n}") for n, photo in enumerate(photos)]
    assert [r.status for r in results] == ["done"] * 3
    assert server.calls == 4 + 5  # P0's detail was cached: only its scene was paid again
    assert Manifest.model_validate_json(store.get("P0/manifest.json")).calls[0].outcome == (
        "cached"
    )
    assert sorted(_ledger(settings)) == sorted(["ok"] * 6 + ["upstream_error"] * 3)


def test_inline_engine_retries_a_deferred_product_after_the_cooldown(server, photos, tmp_path):
    settings = _settings(server, tmp_path, defer_retries=2)
    server.script("503", "503", "503")  # detail: 2 failed attempts; scene: 1, breaker opens
    result = _run(settings, photos[0], "P0")
    assert result.status == "done" and result.paid_calls == 2  # the calls of the last try
    # Paid calls are the successes plus the failed attempts, nothing refused by the breaker.
    assert sorted(_ledger(settings)) == sorted(["ok"] * 2 + ["upstream_error"] * 3)
    assert server.calls == 5


def test_a_product_deferred_every_time_ends_deferred_and_is_kept_for_retry(
    server, photos, tmp_path
):
    settings = _settings(server, tmp_path, defer_retries=2)
    server.set_fault_rates({"503": 1.0})
    result = _run(settings, photos[0], "P0")
    assert (result.status, result.reason) == ("deferred", "backend_unavailable")
    assert server.calls == 3 + 1  # three failures open it; the probe after the cool-down fails
    kept = last_statuses(LocalStore(Path(settings.store.url)), ("failed", "deferred"))
    assert [s.result.status for s in kept] == ["deferred"]
    summary = CatalogSummary(results=[result])
    assert summary.failed == [] and "1 deferred" in summary.lines()[0]
    assert summary.lines()[1].startswith("DEFERRED P0: [")


@pytest.mark.parametrize("fault", ["safety", "400"])
def test_permanent_errors_fail_the_product_and_leave_the_breaker_closed(
    server, photos, tmp_path, fault
):
    settings = _settings(server, tmp_path, defer_retries=2)
    server.script(*[fault] * 4)  # more in a row than breaker_failures
    results = [_run(settings, photos[0], f"F{n}") for n in range(4)]
    assert [r.status for r in results] == ["failed"] * 4
    assert server.calls == 4  # one refused call each; never retried, never deferred
    assert _run(settings, photos[2], "P2").status == "done"


def test_failed_result_reports_only_trouble_upstream_as_deferred():
    from product_images.errors import (
        BackendUnavailableError,
        BudgetExceededError,
        ContentBlockedError,
        CorruptImageError,
        RateLimitedError,
    )

    statuses = {
        type(error).__name__: failed_result("S", error).status
        for error in (
            BackendUnavailableError("open", retry_after=3.0),
            RateLimitedError("429"),
            BudgetExceededError("budget"),
            ContentBlockedError("safety"),
            CorruptImageError("x.jpg", "truncated"),
        )
    }
    assert statuses == {
        "BackendUnavailableError": "deferred",
        "RateLimitedError": "deferred",
        "BudgetExceededError": "skipped",
        "ContentBlockedError": "failed",
        "CorruptImageError": "failed",
    }
