"""The circuit breaker on its own (a fake clock), and inside call_with_backoff."""

import contextlib
import threading

import pytest

from product_images.errors import (
    BackendUnavailableError,
    BadRequestError,
    BudgetExceededError,
    ContentBlockedError,
    GenerationTimeoutError,
    NoImageError,
    RateLimitedError,
    UpstreamServerError,
)
from product_images.generative.backoff import call_with_backoff
from product_images.generative.base import AttemptHooks
from product_images.generative.breaker import CircuitBreaker, breaker_for, reset_breakers


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _call(breaker, error=None):
    """One call through the breaker, failing with `error` when given."""
    with breaker.guard():
        if error is not None:
            raise error


def _fail(breaker, error, times):
    for _ in range(times):
        with pytest.raises(type(error)):
            _call(breaker, error)


@pytest.mark.parametrize("error", [UpstreamServerError("503"), GenerationTimeoutError("timeout")])
def test_outage_failures_in_a_row_open_it(error):
    clock = Clock()
    breaker = CircuitBreaker("gemini m", failures=3, cooldown=30, clock=clock)
    _fail(breaker, error, 2)
    assert breaker.state == "closed"
    _fail(breaker, error, 1)
    assert breaker.state == "open"
    clock.now += 12
    with pytest.raises(BackendUnavailableError) as refused:
        _call(breaker)
    assert refused.value.retry_after == pytest.approx(18)
    assert refused.value.reason == "backend_unavailable"


@pytest.mark.parametrize("answer", [RateLimitedError("429"), NoImageError("malformed")])
def test_throttling_and_odd_answers_never_open_it(answer):
    breaker = CircuitBreaker("gemini m", failures=3, clock=Clock())
    _fail(breaker, answer, 50)
    assert breaker.state == "closed"


@pytest.mark.parametrize("permanent", [ContentBlockedError("safety"), BadRequestError("400")])
def test_permanent_errors_are_answers_that_dilute_the_failure_rate(permanent):
    breaker = CircuitBreaker("gemini m", failures=3, clock=Clock())
    _fail(breaker, UpstreamServerError("503"), 2)
    _fail(breaker, permanent, 5)
    _fail(breaker, UpstreamServerError("503"), 2)  # 4 failures, but 4 of 11 calls
    assert breaker.state == "closed"


def test_a_busy_service_with_scattered_5xx_stays_closed():
    # 40% 429 + 20% 503, the rest answered: a 503 rate of 20%, far from an outage
    clock = Clock()
    breaker = CircuitBreaker("gemini m", failures=5, failure_rate=0.5, window=60, clock=clock)
    pattern = ["429", "ok", "503", "429", "ok"]
    for n in range(500):
        clock.now += 0.05
        answer = pattern[n % len(pattern)]
        if answer == "ok":
            _call(breaker)
        else:
            error = UpstreamServerError("503") if answer == "503" else RateLimitedError("429")
            _fail(breaker, error, 1)
    assert breaker.state == "closed"


def test_a_high_failure_rate_opens_it_though_some_calls_succeed():
    breaker = CircuitBreaker("gemini m", failures=5, failure_rate=0.5, clock=Clock())
    for _ in range(2):
        _fail(breaker, UpstreamServerError("503"), 2)
        _call(breaker)
    assert breaker.state == "closed"  # 4 failures in 6 calls: fewer than 5
    _fail(breaker, UpstreamServerError("503"), 1)
    assert breaker.state == "open"  # the fifth failure, 5 in 7 calls


def test_failures_older_than_the_window_are_forgotten():
    clock = Clock()
    breaker = CircuitBreaker("gemini m", failures=3, window=10, clock=clock)
    for _ in range(5):
        clock.now += 11
        _fail(breaker, UpstreamServerError("503"), 2)
    assert breaker.state == "closed"
    _fail(breaker, UpstreamServerError("503"), 1)
    assert breaker.state == "open"  # three within ten seconds


def test_other_exceptions_say_nothing_about_the_backend():
    breaker = CircuitBreaker("gemini m", failures=2, clock=Clock())
    _fail(breaker, BudgetExceededError("budget"), 5)
    _fail(breaker, ValueError("bug"), 5)
    assert breaker.state == "closed"


def _opened(failures=2, cooldown=30.0):
    clock = Clock()
    breaker = CircuitBreaker("gemini m", failures=failures, cooldown=cooldown, clock=clock)
    _fail(breaker, UpstreamServerError("503"), failures)
    return breaker, clock


def test_after_the_cooldown_a_successful_probe_closes_it():
    breaker, clock = _opened()
    clock.now += 30
    assert breaker.state == "half-open"
    _call(breaker)
    assert breaker.state == "closed" and breaker.retry_after() == 0


def test_a_throttled_probe_is_an_answer_and_closes_it():
    breaker, clock = _opened()
    clock.now += 30
    _fail(breaker, RateLimitedError("429"), 1)
    assert breaker.state == "closed"


def test_a_failed_probe_opens_it_for_a_new_cooldown():
    breaker, clock = _opened()
    clock.now += 31
    _fail(breaker, GenerationTimeoutError("timeout"), 1)
    assert breaker.state == "open" and breaker.retry_after() == pytest.approx(30)
    clock.now += 29
    with pytest.raises(BackendUnavailableError):
        _call(breaker)


def test_a_probe_refused_before_its_call_lets_the_next_caller_probe():
    breaker, clock = _opened()
    clock.now += 30
    _fail(breaker, BudgetExceededError("budget"), 1)
    assert breaker.state == "half-open"
    _call(breaker)
    assert breaker.state == "closed"


@pytest.mark.parametrize("probe_succeeds", [True, False])
def test_exactly_one_probe_while_others_wait_for_its_outcome(probe_succeeds):
    breaker, clock = _opened()
    clock.now += 30
    probe_inside, release_probe = threading.Event(), threading.Event()
    outcomes = []

    def probe():
        with contextlib.suppress(UpstreamServerError), breaker.guard():
            probe_inside.set()
            release_probe.wait(5)
            if not probe_succeeds:
                raise UpstreamServerError("503")

    def waiter():
        try:
            _call(breaker)
            outcomes.append("called")
        except BackendUnavailableError:
            outcomes.append("deferred")

    first = threading.Thread(target=probe)
    first.start()
    assert probe_inside.wait(5)
    others = [threading.Thread(target=waiter) for _ in range(3)]
    for thread in others:
        thread.start()
        thread.join(0.1)
    assert all(t.is_alive() for t in others) and outcomes == []  # waiting on the probe
    release_probe.set()
    for thread in [first, *others]:
        thread.join(5)
    assert outcomes == ["called" if probe_succeeds else "deferred"] * 3


def test_one_breaker_per_backend_root_and_model_with_the_latest_thresholds():
    a = breaker_for("gemini", "http://x", "m1", 5, 30.0)
    assert breaker_for("gemini", "http://x", "m1", 2, 1.0) is a
    assert (a.failures, a.cooldown) == (2, 1.0)
    assert breaker_for("gemini", "http://x", "m2", 5, 30.0) is not a
    assert breaker_for("gemini", "http://y", "m1", 5, 30.0) is not a
    assert breaker_for("openai", "http://x", "m1", 5, 30.0) is not a
    _fail(a, UpstreamServerError("503"), 2)
    assert a.state == "open"
    reset_breakers()
    assert a.state == "closed"


class Recorder:
    """AttemptHooks that count budget reservations and recorded attempts."""

    def __init__(self):
        self.reserved, self.recorded = 0, []

    def hooks(self):
        return AttemptHooks(before=self.reserve, after=self.recorded.append)

    def reserve(self):
        self.reserved += 1


def test_retry_call_stops_at_an_open_breaker_without_reserving_or_recording():
    breaker = CircuitBreaker("gemini m", failures=2, cooldown=30, clock=Clock())
    calls, recorder = [], Recorder()

    def attempt(info):
        calls.append(1)
        raise UpstreamServerError("503", status=503)

    with pytest.raises(BackendUnavailableError):
        call_with_backoff(
            attempt,
            backend="gemini",
            model="m",
            hooks=recorder.hooks(),
            max_attempts=5,
            sleep=lambda s: None,
            breaker=breaker,
        )
    assert len(calls) == 2  # the third attempt met the open breaker
    assert (
        recorder.reserved == 2 and [a.outcome for a in recorder.recorded] == ["upstream_error"] * 2
    )


def test_retry_call_holds_one_limiter_slot_per_attempt():
    held = []

    class CountingLimiter:
        @contextlib.contextmanager
        def slot(self):
            held.append(1)
            yield

    answers = iter([RateLimitedError("429"), UpstreamServerError("503"), "image"])

    def attempt(info):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    value, tries = call_with_backoff(
        attempt, backend="gemini", model="m", sleep=lambda s: None, limiter=CountingLimiter()
    )
    assert (value, tries, len(held)) == ("image", 3, 3)


def test_check_refuses_only_while_open_and_never_claims_the_probe():
    breaker, clock = _opened()
    with pytest.raises(BackendUnavailableError):
        breaker.check()
    clock.now += 30
    breaker.check()  # half-open: the next call may be the probe
    breaker.check()
    _call(breaker)  # ...and the probe is still free for it
    assert breaker.state == "closed"
