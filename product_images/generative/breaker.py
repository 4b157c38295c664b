"""Circuit breakers: one per generative backend, API root and model in a process.

    closed ──(an outage: at least `failures` outage failures within the last `window`
              seconds, and at least `failure_rate` of the calls answered in it)──> open
    open ──(`cooldown` seconds later)──> half-open: one probe call goes through; the callers
                                         arriving meanwhile wait for its outcome
    half-open ──probe answered──> closed        half-open ──probe failed──> open again

Only an outage failure counts against the backend: a 5xx, a failed connection, a timeout
(`is_outage`). A 429 is the service saying "slow down", not "I am down": the adaptive rate
(throttle.py) answers it, and here it counts, like a permanent error (a 400, a safety block) or
an answer without an image, as proof the backend is up. A failure *rate* over a window, not a
run in a row, so the 5xx sprinkled through a busy healthy run never open it, while a real
outage opens it after `failures` calls. While open, a call raises BackendUnavailableError at
once, without touching the network, and the product waiting for it is deferred instead of
failed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from product_images.errors import (
    BackendUnavailableError,
    GenerationError,
    GenerationTimeoutError,
    UpstreamServerError,
)

__all__ = ["BreakerState", "CircuitBreaker", "breaker_for", "is_outage", "reset_breakers"]


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the backend is down: a 5xx, a failed connection or a timeout."""
    return isinstance(error, UpstreamServerError | GenerationTimeoutError)


BreakerState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """A thread-safe circuit breaker around the calls to one backend (see the module doc)."""

    def __init__(
        self,
        name: str,
        failures: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        failure_rate: float = 0.5,
        window: float = 60.0,
    ) -> None:
        self.name = name
        self.failures, self.cooldown = max(1, failures), cooldown
        self.failure_rate, self.window = failure_rate, window
        self._clock = clock
        self._changed = threading.Condition()
        self._state: BreakerState = "closed"
        self._recent: deque[tuple[float, bool]] = deque()  # (when, outage?) of closed calls
        self._opened_at = 0.0
        self._probing = False
        self.opened = 0  # times it opened, for the record

    @property
    def state(self) -> BreakerState:
        """closed, open or half-open, as of now."""
        with self._changed:
            return self._current()

    def retry_after(self) -> float:
        """Seconds left of the cool-down; 0 unless open."""
        with self._changed:
            if self._current() != "open":
                return 0.0
            return max(self.cooldown - (self._clock() - self._opened_at), 0.0)

    def check(self) -> None:
        """Raise BackendUnavailableError while open, without waiting or claiming the probe:
        lets a product be deferred before any work that would be wasted."""
        with self._changed:
            if self._current() == "open":
                raise self._unavailable()

    def configure(
        self, failures: int, cooldown: float, failure_rate: float = 0.5, window: float = 60.0
    ) -> None:
        """New thresholds from the settings; the state is kept."""
        with self._changed:
            self.failures, self.cooldown = max(1, failures), cooldown
            self.failure_rate, self.window = failure_rate, window

    def reset(self) -> None:
        """Closed, no failures counted."""
        with self._changed:
            self._state = "closed"
            self._recent.clear()
            self._changed.notify_all()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Let one call run, or raise BackendUnavailableError; its outcome moves the state.

        Exceptions that are no GenerationError (a budget refusal before the call, a bug) say
        nothing about the backend and leave the state alone.
        """
        probe = self._admit()
        try:
            yield
        except GenerationError as error:
            self._finish(probe, answered=not is_outage(error))
            raise
        except BaseException:
            self._finish(probe, answered=None)
            raise
        self._finish(probe, answered=True)

    def _current(self) -> BreakerState:
        """The state, moving open -> half-open once the cool-down is over (lock held)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            self._state = "half-open"
        return self._state

    def _admit(self) -> bool:
        """True when this call is the half-open probe; raises while open."""
        with self._changed:
            while True:
                state = self._current()
                if state == "closed":
                    return False
                if state == "open":
                    raise self._unavailable()
                if not self._probing:
                    self._probing = True
                    return True
                # Another call is the probe: its outcome decides for this one too, rather
                # than deferring every waiting product when the backend may be back.
                self._changed.wait(timeout=1.0)

    def _finish(self, probe: bool, answered: bool | None) -> None:
        with self._changed:
            if probe:
                self._probing = False
                if answered is True:
                    self._state = "closed"
                    self._recent.clear()
                elif answered is False:
                    self._open()
            elif answered is not None and self._state == "closed":
                self._count(outage=not answered)
            self._changed.notify_all()

    def _count(self, outage: bool) -> None:
        """Record one call's outcome in the window; open on an outage (lock held)."""
        now = self._clock()
        self._recent.append((now, outage))
        while self._recent and self._recent[0][0] <= now - self.window:
            self._recent.popleft()
        failed = sum(1 for _, was_outage in self._recent if was_outage)
        if failed >= self.failures and failed >= self.failure_rate * len(self._recent):
            self._open()

    def _open(self) -> None:
        self._state, self._opened_at = "open", self._clock()
        self.opened += 1
        self._recent.clear()

    def _unavailable(self) -> BackendUnavailableError:
        wait = max(self.cooldown - (self._clock() - self._opened_at), 0.0)
        return BackendUnavailableError(
            f"{self.name}: paused on an outage (at least {self.failures} calls failed with "
            f"5xx or timeouts, {self.failure_rate:.0%} or more of the last {self.window:g}s; "
            f"circuit breaker open); calls resume in {wait:.1f}s",
            retry_after=wait,
        )


_BREAKERS: dict[tuple[str, str, str], CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(
    backend: str,
    base_url: str,
    model: str,
    failures: int,
    cooldown: float,
    failure_rate: float = 0.5,
    window: float = 60.0,
) -> CircuitBreaker:
    """The process's breaker for this backend, API root and model, with these thresholds.

    Keyed by the API root too: a relay and Google's endpoint fail independently.
    """
    with _BREAKERS_LOCK:
        key = (backend, base_url, model)
        if key not in _BREAKERS:
            _BREAKERS[key] = CircuitBreaker(f"{backend} {model}", failures, cooldown)
        breaker = _BREAKERS[key]
    breaker.configure(failures, cooldown, failure_rate, window)
    return breaker


def reset_breakers() -> None:
    """Close every breaker and forget its failures (tests; an operator's clean slate)."""
    with _BREAKERS_LOCK:
        breakers = list(_BREAKERS.values())
    for breaker in breakers:
        breaker.reset()
