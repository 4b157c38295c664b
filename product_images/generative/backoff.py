"""HTTP backoff shared by the generative clients: the delays and the attempt loop.

"Backoff" is the retrying of one HTTP call, within one product's generation. Not to be
confused with the `retry` command, which reruns failed products (cli, product_images.deferral),
nor with Prefect's task retries (tasks/product.py). Which failures are retried, and the server's
own delay (RetryInfo, Retry-After), come from the error mapping: http_errors.py.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, cast

from product_images.errors import GenerationError, RetryableGenerationError
from product_images.generative.base import Attempt, AttemptHooks, Usage
from product_images.generative.breaker import CircuitBreaker
from product_images.generative.call_limiter import CallLimiter, unlimited
from product_images.generative.throttle import AdaptiveRate

__all__ = ["AttemptInfo", "RandomSource", "backoff_delay", "call_with_backoff"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class RandomSource(Protocol):
    """Anything with random() in [0, 1): random.Random, or a stub in tests."""

    def random(self) -> float: ...


# --------------------------------------------------------------------------- delays


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    rng: RandomSource | None = None,
    jitter: Literal["equal", "full", "none"] = "equal",
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first try).

    The ceiling doubles per attempt: base, 2*base, 4*base... capped at `cap`.
    "equal" jitter (the default) waits between half the ceiling and the ceiling, so a retry
    after a 429 never comes back immediately; "full" waits anywhere in [0, ceiling].
    """
    if base <= 0 or cap <= 0:
        return 0.0
    exponent = min(max(attempt, 1) - 1, 60)  # 2**60 * base is past any cap; no overflow
    ceiling = min(cap, base * 2.0**exponent)
    if jitter == "none":
        return ceiling
    draw = (rng or random).random()
    if jitter == "full":
        return ceiling * draw
    return ceiling / 2 + ceiling / 2 * draw


# --------------------------------------------------------------------------- retries


@dataclass
class AttemptInfo:
    """What one attempt learnt, filled in by the client as it goes, so the Attempt record is
    complete even when the attempt fails (a text-only answer is still billed)."""

    http_status: int | None = None
    usage: Usage = field(default_factory=Usage)


def call_with_backoff(
    attempt: Callable[[AttemptInfo], T],
    *,
    backend: str,
    model: str,
    hooks: AttemptHooks | None = None,
    max_attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    rng: RandomSource | None = None,
    scrub: Callable[[str], str] = str,
    limiter: CallLimiter = unlimited,
    breaker: CircuitBreaker | None = None,
    throttle: AdaptiveRate | None = None,
) -> tuple[T, int]:
    """Run `attempt` until it succeeds, a permanent error, or `max_attempts`; (value, tries).

    Every attempt waits for its turn at the adaptive `throttle` (which its outcome then
    moves), holds a `limiter` slot and goes through the `breaker`. hooks.before() runs
    before every attempt and hooks.after() after every attempt with its Attempt record. An
    open breaker (BackendUnavailableError) and an error of hooks.before() (BudgetExceededError)
    propagate untouched: no call was made, nothing is recorded. Only RetryableGenerationError
    is retried; the wait is the exponential backoff, or the server's hint (RetryInfo /
    Retry-After) when that is longer, never more than `max_delay`. After the last attempt the
    last error is re-raised.
    """
    hooks = hooks or AttemptHooks()
    max_attempts = max(1, max_attempts)
    for number in range(1, max_attempts + 1):
        info = AttemptInfo()
        value, error, seconds = _attempt_once(attempt, info, hooks, (limiter, breaker, throttle))
        hooks.after(_attempt_record(backend, model, info, seconds, error, scrub))
        if error is None:
            return cast(T, value), number
        if not isinstance(error, RetryableGenerationError) or number >= max_attempts:
            raise error
        delay = backoff_delay(number, base_delay, max_delay, rng)
        delay = min(max(delay, error.retry_after or 0.0), max_delay)
        log.warning(
            "%s %s: attempt %d/%d failed (%s), retrying in %.2fs: %s",
            backend,
            model,
            number,
            max_attempts,
            error.reason,
            delay,
            scrub(str(error)),
        )
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


_Guards = tuple[CallLimiter, CircuitBreaker | None, AdaptiveRate | None]


def _attempt_once(
    attempt: Callable[[AttemptInfo], T], info: AttemptInfo, hooks: AttemptHooks, guards: _Guards
) -> tuple[T | None, Exception | None, float]:
    """(value, error, seconds) of one call; errors raised before the call propagate."""
    limiter, breaker, throttle = guards
    # The throttle's turn comes before the concurrency slot: waiting for it holds no slot.
    ticket = throttle.wait() if throttle else 0.0
    started: float | None = None
    value: T | None = None
    error: Exception | None = None
    try:
        with limiter.slot(), breaker.guard() if breaker else nullcontext():
            hooks.before()
            started = time.monotonic()
            value = attempt(info)
    except Exception as exc:
        if started is None:  # refused before any request went out: nothing to record
            raise
        error = exc
    if throttle:
        throttle.record(ticket, error)
    return value, error, time.monotonic() - started


def _attempt_record(
    backend: str,
    model: str,
    info: AttemptInfo,
    seconds: float,
    error: Exception | None,
    scrub: Callable[[str], str],
) -> Attempt:
    """The ledger's record of one attempt that reached the API."""
    status = info.http_status
    if status is None and isinstance(error, GenerationError):
        status = error.status
    return Attempt(
        backend=backend,
        model=model,
        outcome="ok" if error is None else getattr(error, "reason", "error"),
        http_status=status,
        usage=info.usage,
        seconds=seconds,
        message="" if error is None else scrub(str(error)),
    )
