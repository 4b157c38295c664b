"""Generative calls across workers: Prefect global limits, and deferred products retried by
Prefect within a catalog run (the stand-in server plays Gemini)."""

import io
import threading
import time
from collections.abc import Callable

import pytest
from prefect.client.orchestration import get_client

from product_images.errors import SettingsError
from product_images.generative.base import GenerationRequest, ImageInput
from product_images.generative.breaker import reset_breakers
from product_images.generative.call_limiter import cluster_limits
from product_images.generative.clients import make_generator
from product_images.generative.ledger import Ledger
from product_images.generative.throttle import BACKOFF, reset_throttles
from product_images.settings import Settings, get_settings
from product_images.store import LocalStore
from product_images.tasks.global_limits import (
    PrefectCallLimiter,
    RatePublisher,
    ensure_concurrency_limits,
    limit_names,
    prefect_call_limits,
)
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer
from product_images.wiring import wire


@pytest.fixture(scope="module")
def server():
    with StandinServer(latency=0.3) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server):
    server.reset()
    reset_breakers()
    yield
    reset_breakers()


def _limit(name):
    with get_client(sync_client=True) as client:
        found = client.read_global_concurrency_limit_by_name(name)
    return found.limit, found.slot_decay_per_second


def test_the_project_creates_its_limits_from_the_settings_and_updates_them():
    names = ensure_concurrency_limits(Settings(gemini_rpm=120, gemini_concurrency=3))
    assert set(names) == {"gemini-requests", "gemini-rpm", "openai-requests", "openai-rpm"}
    assert _limit("gemini-requests") == (3, 0)
    assert _limit("gemini-rpm") == (20, pytest.approx(2.0))  # 10 s worth, 2 a second
    ensure_concurrency_limits(Settings(gemini_rpm=30, gemini_concurrency=5))
    assert _limit("gemini-requests") == (5, 0)
    assert _limit("gemini-rpm") == (5, pytest.approx(0.5))


def test_a_missing_limit_is_a_clear_error():
    slot = PrefectCallLimiter("nowhere").slot()
    with pytest.raises(SettingsError, match="'nowhere-requests' and 'nowhere-rpm'"):
        slot.__enter__()


def _request() -> GenerationRequest:
    buffer = io.BytesIO()
    draw_product(size=(200, 160))[0].save(buffer, format="PNG")
    return GenerationRequest("A white studio shot", (ImageInput(buffer.getvalue(), "image/png"),))


def _two_at_once(server: StandinServer) -> Settings:
    """Settings whose Prefect limit allows 2 calls at once (the limits are made here)."""
    settings = Settings(
        gemini_api_key=server.api_key,
        gemini_base_url=server.url,
        gemini_image_size="512",
        gemini_concurrency=2,
        gemini_rpm=6000,
    )
    ensure_concurrency_limits(settings)
    return settings


def _peak_in_flight(server: StandinServer, call: Callable[[], object], calls: int) -> int:
    """Run `call` on `calls` threads; the most requests the server had in flight at once."""
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sum(r.status is None for r in list(server.requests)))
            time.sleep(0.005)

    threads = [threading.Thread(target=call) for _ in range(calls)]
    watcher = threading.Thread(target=watch)
    for thread in [watcher, *threads]:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    watcher.join()
    return peak[0]


def test_calls_take_the_global_limits_never_more_in_flight_than_allowed(server):
    settings = _two_at_once(server)
    # The in-process limiter would allow 8 at once: only the Prefect limit can hold it at 2.
    client = make_generator(settings.model_copy(update={"gemini_concurrency": 8}), "gemini")

    def call():
        with cluster_limits(PrefectCallLimiter):
            client.generate(_request())

    peak = _peak_in_flight(server, call, 5)
    assert server.calls == 5 and 1 <= peak <= 2


def test_pooled_slots_keep_the_limit_and_go_back_when_the_last_task_ends(server):
    settings = _two_at_once(server)
    client = make_generator(settings.model_copy(update={"gemini_concurrency": 8}), "gemini")

    def call():
        with prefect_call_limits(wire(settings)):
            client.generate(_request())

    peak = _peak_in_flight(server, call, 6)
    assert server.calls == 6 and 1 <= peak <= 2
    with get_client(sync_client=True) as prefect:
        assert prefect.read_global_concurrency_limit_by_name("gemini-requests").active_slots == 0


def test_a_429_slows_every_worker_down_through_the_prefect_rate_limit(server):
    settings = Settings(
        gemini_api_key=server.api_key,
        gemini_base_url=server.url,
        gemini_image_size="512",
        gemini_rpm=6000,
        retry_base_delay=0,
    )
    ensure_concurrency_limits(settings)
    reset_throttles()
    client = make_generator(settings, "gemini")
    server.script("429")
    with prefect_call_limits(wire(settings)):
        client.generate(_request())  # a 429, then an image
    # the decrease is published; the increase right after it waits for the next second
    assert _limit("gemini-rpm")[1] == pytest.approx(100 * BACKOFF)
    ensure_concurrency_limits(settings)  # a flow's start: back to the configured rate
    assert _limit("gemini-rpm")[1] == pytest.approx(100)
    reset_throttles()


@pytest.mark.parametrize(
    ("rates", "published"),
    [
        ([7.0, 4.9, 5.0], [7.0]),  # one write a second at most
        ([7.0, ("later", 4.9), ("later", 4.9)], [7.0, 4.9]),  # an unchanged rate: no write
        ([7.0, ("later", 8.0)], [7.0, 8.0]),  # an increase a second later
    ],
)
def test_the_rate_publisher_writes_at_most_once_a_second(rates, published):
    clock, written = [0.0], []
    publisher = RatePublisher(
        "gemini-rpm",
        ceiling=10.0,
        update=lambda name, rate: written.append(rate),
        clock=lambda: clock[0],
    )
    for rate in rates:
        if isinstance(rate, tuple):
            clock[0] += 1.0
            rate = rate[1]
        publisher(rate)
    assert written == published


def test_the_rate_publisher_never_fails_the_call_it_follows(caplog):
    def broken(name, rate):
        raise RuntimeError("server gone")

    RatePublisher("gemini-rpm", ceiling=10.0, update=broken)(5.0)
    assert "could not publish the adaptive rate to gemini-rpm" in caplog.text


def test_a_busy_prefect_server_defers_the_product_a_missing_limit_is_a_settings_error():
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

    from product_images.deferral import is_deferred
    from product_images.errors import LimitsUnavailableError

    limiter = PrefectCallLimiter("gemini")
    busy = limiter._refusal(ConcurrencySlotAcquisitionError("Unable to acquire: 503"))
    assert isinstance(busy, LimitsUnavailableError) and is_deferred(busy)
    missing = ConcurrencySlotAcquisitionError("Concurrency limits ['x'] must be created before")
    assert isinstance(limiter._refusal(missing), SettingsError)


def test_limit_names_are_per_backend():
    assert limit_names("gemini") == ("gemini-requests", "gemini-rpm")


# --------------------------------------------------------------------- the catalog flow


@pytest.fixture
def gemini_env(server, monkeypatch):
    for name, value in {
        "GEMINI_API_KEY": server.api_key,
        "GEMINI_BASE_URL": server.url,
        "PRODUCT_IMAGES_BACKEND": "gemini",
        "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE": "512",
        "PRODUCT_IMAGES_MASTER_SIDE": "512",
        "PRODUCT_IMAGES_RETRY_BASE_DELAY": "0",
        "PRODUCT_IMAGES_MAX_ATTEMPTS": "1",
        "PRODUCT_IMAGES_BREAKER_FAILURES": "2",
        "PRODUCT_IMAGES_BREAKER_COOLDOWN": "1",
        "PRODUCT_IMAGES_DEFER_RETRIES": "3",
        "PRODUCT_IMAGES_THREADS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _catalog(tmp_path, count):
    rows = ["sku,source"]
    for n in range(count):
        draw_product(size=(500, 400), colour=(40 + 50 * n, 90, 150))[0].save(tmp_path / f"{n}.jpg")
        rows.append(f"P{n},{n}.jpg")
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    return str(tmp_path / "c.csv")


def test_deferred_products_are_retried_by_prefect_and_complete(server, gemini_env, tmp_path):
    from product_images.flows.process_catalog import process_catalog

    server.script("503", "503")  # two failures in a row: the breaker opens
    store = tmp_path / "out"
    summary = process_catalog(catalog=_catalog(tmp_path, 3), platforms=["amazon"], store=str(store))
    assert [r.status for r in summary.results] == ["done"] * 3, summary.lines()
    assert summary.deferred == [] and summary.failed == []
    # Paid: each product's scene and detail once, plus the two failed attempts; nothing for
    # calls the open breaker refused, nothing twice for a master made before a deferral.
    assert server.calls == 3 * 2 + 2
    outcomes = sorted(e.outcome for e in Ledger(LocalStore(store)).entries())
    assert outcomes == ["ok"] * 6 + ["upstream_error"] * 2


def test_a_product_failing_for_good_is_not_retried(server, gemini_env, tmp_path):
    from product_images.flows.process_catalog import process_catalog

    server.script("safety")
    summary = process_catalog(
        catalog=_catalog(tmp_path, 1), platforms=["amazon"], store=str(tmp_path / "out")
    )
    assert [(r.status, r.reason) for r in summary.results] == [("failed", "content_blocked")]
    assert server.calls == 1
