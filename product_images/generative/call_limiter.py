"""Rate and concurrency limits around every HTTP attempt to a generative backend.

A `CallLimiter` hands out `slot()`s: a context manager held for one attempt, which waits for
a free concurrency slot and for the requests-per-minute budget. Here, Prefect-free, the
in-process limiter (a semaphore and a token bucket). Across workers the tasks layer provides
one on Prefect global concurrency limits and routes calls through it with `cluster_limits`.

Both read a rate the same way: `rpm / 60` requests a second, in bursts of at most ten
seconds' worth (`burst_of`), so an idle worker cannot fire a whole minute's quota at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

__all__ = [
    "BackendLimiter",
    "CallLimiter",
    "InProcessLimiter",
    "TokenBucket",
    "backend_limiter",
    "burst_of",
    "cluster_limits",
    "unlimited",
]


class CallLimiter(Protocol):
    """Anything that can hold one attempt back until the limits allow it."""

    def slot(self) -> AbstractContextManager[None]:
        """Held around one HTTP attempt."""
        ...


class _Unlimited:
    def slot(self) -> AbstractContextManager[None]:
        return nullcontext()


#: A limiter that never waits (clients built without settings, e.g. in tests).
unlimited: CallLimiter = _Unlimited()


def burst_of(rpm: float) -> int:
    """Requests that may go at once after a quiet spell: ten seconds' worth, at least one."""
    return max(1, round(rpm / 6))


class TokenBucket:
    """`rate` tokens a second, at most `capacity` saved up. A caller that finds none takes
    one on credit and sleeps until it is due, so waiting callers are served in order."""

    def __init__(
        self,
        rate: float,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._updated = clock()

    def take(self) -> float:
        """Wait for a token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            saved = self._tokens + (now - self._updated) * self.rate
            self._tokens = min(saved, float(self.capacity)) - 1.0
            self._updated = now
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class InProcessLimiter:
    """At most `concurrency` attempts at once and `rpm` a minute, within this process."""

    def __init__(
        self,
        concurrency: int,
        rpm: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.concurrency = concurrency
        self.rpm = rpm
        self._slots = threading.BoundedSemaphore(concurrency)
        self._bucket = TokenBucket(rpm / 60.0, burst_of(rpm), clock, sleep)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A concurrency slot first, then the rate token: the attempt starts when it is due."""
        with self._slots:
            self._bucket.take()
            yield


class _Cluster:
    """Cluster-wide limits replace the in-process ones while at least one block of
    `cluster_limits` runs: set by the Prefect task around each product and seen by the
    client's threads (a context variable would not reach the pipeline's thread pools)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.factory: Callable[[str], CallLimiter] | None = None
        self.users = 0


_CLUSTER = _Cluster()


@contextmanager
def cluster_limits(factory: Callable[[str], CallLimiter]) -> Iterator[None]:
    """Route every backend's attempts through `factory(backend)` while the block runs.

    Blocks may overlap (one per running product); the first one's factory is used until
    the last one ends.
    """
    with _CLUSTER.lock:
        if not _CLUSTER.users:
            _CLUSTER.factory = factory
        _CLUSTER.users += 1
    try:
        yield
    finally:
        with _CLUSTER.lock:
            _CLUSTER.users -= 1
            if not _CLUSTER.users:
                _CLUSTER.factory = None


def _cluster_limiter(backend: str) -> CallLimiter | None:
    with _CLUSTER.lock:
        factory = _CLUSTER.factory
    return factory(backend) if factory is not None else None


class BackendLimiter:
    """One backend's limiter: the cluster-wide one while `cluster_limits` is in force, else
    the in-process one (shared by every client of the backend with the same limits)."""

    def __init__(self, backend: str, local: CallLimiter) -> None:
        self.backend = backend
        self.local = local

    def slot(self) -> AbstractContextManager[None]:
        """A slot from whichever limiter applies right now."""
        return (_cluster_limiter(self.backend) or self.local).slot()


_LOCAL: dict[tuple[str, float, int], InProcessLimiter] = {}
_LOCAL_LOCK = threading.Lock()


def backend_limiter(backend: str, rpm: float, concurrency: int) -> BackendLimiter:
    """The limiter a client of `backend` holds: one in-process budget per backend and limits,
    so the synchronous and the batch client of a process share it."""
    with _LOCAL_LOCK:
        key = (backend, rpm, concurrency)
        if key not in _LOCAL:
            _LOCAL[key] = InProcessLimiter(concurrency, rpm)
        return BackendLimiter(backend, _LOCAL[key])
