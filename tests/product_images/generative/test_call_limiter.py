"""Rate and concurrency limits: the token bucket on a fake clock, the in-process limiter against
the stand-in server, and the switch to cluster-wide limits."""

import contextlib
import itertools
import threading
import time

import pytest

from product_images.generative.base import GenerationRequest, ImageInput
from product_images.generative.call_limiter import (
    BackendLimiter,
    InProcessLimiter,
    TokenBucket,
    backend_limiter,
    burst_of,
    cluster_limits,
    unlimited,
)
from product_images.generative.clients import make_generator
from product_images.settings import Settings
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer


class FakeTime:
    """A clock whose sleep advances it."""

    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.mark.parametrize(("rpm", "burst"), [(1, 1), (6, 1), (60, 10), (600, 100), (9, 2)])
def test_bursts_are_ten_seconds_worth(rpm, burst):
    assert burst_of(rpm) == burst


def test_bucket_lets_a_burst_through_then_spaces_calls_at_the_rate():
    fake = FakeTime()
    bucket = TokenBucket(rate=1.0, capacity=3, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(6):
        bucket.take()
        starts.append(fake.now)
    assert starts == [0, 0, 0, 1, 2, 3]


def test_bucket_refills_while_idle_but_never_past_its_capacity():
    fake = FakeTime()
    bucket = TokenBucket(rate=0.5, capacity=2, clock=fake.clock, sleep=fake.sleep)
    bucket.take(), bucket.take()
    fake.now += 100  # a long quiet spell saves up 2 tokens, not 50
    waits = [bucket.take() for _ in range(3)]
    assert waits == [0, 0, pytest.approx(2.0)]


def test_in_process_limiter_keeps_to_the_rpm_over_a_minute():
    fake = FakeTime()
    limiter = InProcessLimiter(concurrency=4, rpm=30, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(40):
        with limiter.slot():
            starts.append(fake.now)
    in_first_minute = sum(t < 60 for t in starts)
    assert in_first_minute <= 30 + burst_of(30)
    assert all(b - a == pytest.approx(2.0) for a, b in itertools.pairwise(starts[4:]))


def test_in_process_limiter_never_has_more_than_its_concurrency_in_flight():
    limiter = InProcessLimiter(concurrency=3, rpm=60_000)
    lock, inside, peak = threading.Lock(), [0], [0]

    def work():
        with limiter.slot():
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert 1 <= peak[0] <= 3 and inside[0] == 0


def test_clients_of_one_backend_share_the_in_process_budget():
    a, b = backend_limiter("gemini", 123.0, 4), backend_limiter("gemini", 123.0, 4)
    assert a.local is b.local
    assert backend_limiter("openai", 123.0, 4).local is not a.local
    assert backend_limiter("gemini", 124.0, 4).local is not a.local


def test_cluster_limits_replace_the_local_ones_while_any_block_runs():
    used = []

    class Named:
        def __init__(self, name):
            self.name = name

        @contextlib.contextmanager
        def slot(self):
            used.append(self.name)
            yield

    limiter = BackendLimiter("gemini", Named("local"))
    with limiter.slot():
        pass
    with cluster_limits(lambda backend: Named(f"cluster-{backend}")):
        with cluster_limits(lambda backend: Named("second")), limiter.slot():
            pass
        with limiter.slot():  # the outer block still runs
            pass
    with limiter.slot():
        pass
    assert used == ["local", "cluster-gemini", "cluster-gemini", "local"]


# --------------------------------------------------------------------- against the stand-in


@pytest.fixture(scope="module")
def server():
    with StandinServer(latency=0.3) as running:
        yield running


def _request() -> GenerationRequest:
    import io

    buffer = io.BytesIO()
    draw_product(size=(200, 160))[0].save(buffer, format="PNG")
    return GenerationRequest("A white studio shot", (ImageInput(buffer.getvalue(), "image/png"),))


def _client(server, **limits):
    settings = Settings(
        gemini_api_key=server.api_key,
        gemini_base_url=server.url,
        gemini_image_size="512",
        retry_base_delay=0.0,
        **limits,
    )
    return make_generator(settings, "gemini")


def _in_flight_peak(server, calls):
    """Run `calls` on threads; the most requests the server ever had unanswered at once."""
    peak, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            pending = sum(r.status is None for r in list(server.requests))
            peak[0] = max(peak[0], pending)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    done.set()
    watcher.join()
    return peak[0]


def test_concurrency_setting_caps_requests_in_flight_at_the_server(server):
    server.reset()
    client = _client(server, gemini_concurrency=2, gemini_rpm=60_000)
    peak = _in_flight_peak(server, [lambda: client.generate(_request())] * 6)
    assert server.calls == 6
    assert peak == 2  # never more; and with 0.3 s answers the two slots are both used


def test_rpm_setting_spaces_requests_at_the_server(server):
    server.reset()
    client = _client(server, gemini_concurrency=16, gemini_rpm=59.0)  # burst of 10, then 1/s
    threads = [threading.Thread(target=client.generate, args=(_request(),)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    arrivals = sorted(r.time for r in server.requests)
    assert len(arrivals) == 12
    # Ten go at once; the 11th and 12th wait about 1 and 2 s for their tokens.
    assert arrivals[-1] - arrivals[0] >= 1.5


def test_clients_built_directly_are_not_limited():
    from product_images.generative.gemini import GeminiClient

    assert GeminiClient("test-key-123").limiter is unlimited
