"""The adaptive request rate on its own (a fake clock), and inside call_with_backoff."""

import pytest

from product_images.errors import (
    BadRequestError,
    GenerationTimeoutError,
    RateLimitedError,
    UpstreamServerError,
)
from product_images.generative.backoff import call_with_backoff
from product_images.generative.throttle import (
    BACKOFF,
    RECOVERY_STEPS,
    AdaptiveRate,
    reset_throttles,
    throttle_for,
)


class Clock:
    """A fake clock whose sleep moves it on."""

    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def _rate(ceiling=10.0):
    clock = Clock()
    return AdaptiveRate(ceiling, clock=clock, sleep=clock.sleep), clock


def _throttle(rate, times=1):
    for _ in range(times):
        rate.record(rate.wait(), RateLimitedError("429"))


def test_at_the_ceiling_nothing_waits():
    rate, clock = _rate()
    for _ in range(100):
        rate.record(rate.wait(), None)
    assert clock.slept == [] and rate.rate == 10.0


def test_a_429_lowers_the_rate_and_attempts_are_paced_by_it():
    rate, clock = _rate()
    _throttle(rate)
    assert rate.rate == pytest.approx(10.0 * BACKOFF)
    start = clock.now
    for _ in range(7):
        rate.wait()
    assert clock.now - start == pytest.approx(7 / rate.rate)  # 1/rate apart


def test_successes_bring_it_back_to_the_ceiling():
    rate, _ = _rate()
    _throttle(rate, 5)
    assert rate.rate < 10.0 * BACKOFF**4
    for _ in range(RECOVERY_STEPS):
        rate.record(rate.wait(), None)
    assert rate.rate == 10.0


@pytest.mark.parametrize(
    "error", [UpstreamServerError("503"), GenerationTimeoutError("t"), BadRequestError("400")]
)
def test_other_failures_leave_the_rate_alone(error):
    rate, _ = _rate()
    _throttle(rate)
    lowered = rate.rate
    rate.record(rate.wait(), error)
    assert rate.rate == lowered


def test_429s_of_requests_sent_before_the_last_decrease_are_one_signal():
    rate, _ = _rate()
    in_flight = [rate.wait() for _ in range(16)]  # sixteen sent at the ceiling
    for ticket in in_flight:
        rate.record(ticket, RateLimitedError("429"))
    assert rate.rate == pytest.approx(10.0 * BACKOFF)


def test_it_never_falls_under_the_floor():
    rate, _ = _rate(ceiling=5.0)
    _throttle(rate, 200)
    assert rate.rate == pytest.approx(rate.floor) and rate.floor == pytest.approx(0.1)
    assert AdaptiveRate(0.01).floor == 0.01  # never above the ceiling itself


def test_random_429s_settle_at_a_working_rate_not_the_floor():
    # 40% 429 + 20% 503 drawn at random, requests one at a time: the rate keeps moving but
    # the successes keep it well above the floor
    rate, _ = _rate(ceiling=5.0)
    pattern = ["429", "ok", "503", "429", "ok"] * 100
    seen = []
    for answer in pattern:
        error = {"429": RateLimitedError("429"), "503": UpstreamServerError("503")}.get(answer)
        rate.record(rate.wait(), error)
        seen.append(rate.rate)
    assert min(seen[50:]) > 5.0 / 5 > 5 * rate.floor  # a fifth of the ceiling or more


def test_one_rate_per_backend_root_and_model_with_the_latest_ceiling():
    a = throttle_for("gemini", "http://x", "m", 600)
    assert throttle_for("gemini", "http://x", "m", 300) is a and a.ceiling == 5.0
    assert throttle_for("gemini", "http://x", "m2", 300) is not a
    a.record(a.wait(), RateLimitedError("429"))
    assert a.rate < 5.0
    reset_throttles()
    assert a.rate == 5.0


def test_retry_call_feeds_every_attempt_to_the_throttle():
    rate, clock = _rate()
    answers = iter([RateLimitedError("429"), RateLimitedError("429"), "image"])

    def attempt(info):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    value, tries = call_with_backoff(
        attempt, backend="gemini", model="m", sleep=clock.sleep, base_delay=0.01, throttle=rate
    )
    assert (value, tries) == ("image", 3)
    assert rate.rate == pytest.approx(10 * BACKOFF * BACKOFF + 10 / RECOVERY_STEPS)
