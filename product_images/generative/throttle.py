"""An adaptive client-side request rate: 429s lower it, successes raise it again.

The idea of botocore's `adaptive` retry mode, kept small: the rate starts at the configured
ceiling (`<backend>_rpm`), where it paces nothing (the rate limiter enforces the ceiling).
A 429 multiplies it by `BACKOFF`; each success adds `1 / RECOVERY_STEPS` of the ceiling, so
after a throttle burst the rate climbs back within ten successes (additive increase,
multiplicative decrease: the rate settles just under what the API accepts).

Only one decrease per flight of requests: a 429 lowers the rate only when its request was
sent after the previous decrease, because the requests already in flight when the server
started throttling carry no news (sixteen 429s of one overload are one signal, not sixteen).
Below the ceiling every attempt waits for its turn, `1 / rate` seconds apart, before it takes a
concurrency slot. The rate never falls under `FLOOR_FRACTION` of the ceiling (and at least one
request a minute), so a long run of 429s cannot stall a run for good.

Listeners (`subscribe`) hear every new rate: the tasks layer publishes it to the Prefect rate
limit, so every worker of a server slows down together (tasks/global_limits.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from product_images.errors import RateLimitedError

__all__ = [
    "BACKOFF",
    "FLOOR_FRACTION",
    "RECOVERY_STEPS",
    "AdaptiveRate",
    "reset_throttles",
    "throttle_for",
]

#: The rate is multiplied by this on a 429 (botocore's CUBIC beta).
BACKOFF = 0.7
#: Successes that bring the rate from nothing back to the ceiling.
RECOVERY_STEPS = 10
#: The lowest rate, as a fraction of the ceiling.
FLOOR_FRACTION = 0.02


class AdaptiveRate:
    """A thread-safe adaptive request rate under a ceiling of `ceiling` requests a second."""

    def __init__(
        self,
        ceiling: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self.ceiling = ceiling
        self.rate = ceiling
        self._next = 0.0  # when the next attempt may start while the rate is lowered
        self._lowered_at = float("-inf")  # when the last decrease happened
        self._listeners: list[Callable[[float], None]] = []

    def subscribe(self, listener: Callable[[float], None]) -> None:
        """Call `listener(rate)` (once per listener) after every change of the rate."""
        with self._lock:
            if listener not in self._listeners:
                self._listeners.append(listener)

    @property
    def floor(self) -> float:
        """The lowest rate: a fraction of the ceiling, at least one request a minute."""
        return min(self.ceiling, max(self.ceiling * FLOOR_FRACTION, 1 / 60))

    def configure(self, ceiling: float) -> None:
        """A new ceiling from the settings; the current rate is kept under it."""
        with self._lock:
            self.ceiling = ceiling
            self.rate = min(self.rate, ceiling)

    def wait(self) -> float:
        """Wait for this attempt's turn (no wait at the ceiling); returns when it started, on
        this rate's clock: the ticket to `record` its outcome with."""
        with self._lock:
            now = self._clock()
            if self.rate >= self.ceiling:
                return now
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
        if start > now:
            self._sleep(start - now)
        return start

    def record(self, sent_at: float, error: BaseException | None) -> None:
        """One attempt's outcome: a 429 lowers the rate, a success raises it, the rest (a
        5xx, a timeout: the breaker's business) leave it alone. `sent_at` is `wait`'s ticket."""
        if isinstance(error, RateLimitedError):
            changed = self._throttled(sent_at)
        elif error is None:
            changed = self._succeeded()
        else:
            return
        if changed:
            for listener in list(self._listeners):
                listener(changed)

    def _throttled(self, sent_at: float) -> float:
        """The new rate, or 0.0 when this 429 changes nothing."""
        with self._lock:
            if sent_at <= self._lowered_at:  # sent before the last decrease: old news
                return 0.0
            self._lowered_at = self._clock()
            self.rate = max(self.floor, self.rate * BACKOFF)
            self._next = max(self._next, self._lowered_at + 1.0 / self.rate)
            return self.rate

    def reset(self) -> None:
        """Back at the ceiling, no pacing."""
        with self._lock:
            self.rate, self._next, self._lowered_at = self.ceiling, 0.0, float("-inf")

    def _succeeded(self) -> float:
        """The new rate, or 0.0 when already at the ceiling."""
        with self._lock:
            if self.rate >= self.ceiling:
                return 0.0
            self.rate = min(self.ceiling, self.rate + self.ceiling / RECOVERY_STEPS)
            return self.rate


_THROTTLES: dict[tuple[str, str, str], AdaptiveRate] = {}
_THROTTLES_LOCK = threading.Lock()


def throttle_for(backend: str, base_url: str, model: str, rpm: float) -> AdaptiveRate:
    """The process's adaptive rate for this backend, API root and model (quotas are per
    project and model), under a ceiling of `rpm` requests a minute."""
    with _THROTTLES_LOCK:
        key = (backend, base_url, model)
        if key not in _THROTTLES:
            _THROTTLES[key] = AdaptiveRate(rpm / 60.0)
        throttle = _THROTTLES[key]
    throttle.configure(rpm / 60.0)
    return throttle


def reset_throttles() -> None:
    """Every adaptive rate back at its ceiling (tests; an operator's clean slate)."""
    with _THROTTLES_LOCK:
        throttles = list(_THROTTLES.values())
    for throttle in throttles:
        throttle.reset()
