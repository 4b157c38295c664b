"""This process's share of a Prefect global concurrency limit, lent attempt by attempt.

Taking a slot from the server costs an acquisition, a lease renewal task and a release, each
a write to the server's database; at a dozen generations a second those writes queue behind
one another (SQLite takes one writer at a time) and a slot took seconds to come back
(bench/throughput.py, bench/RESULTS.md section 3). A `SlotPool` holds each slot it took from
the server for as long as attempts keep coming and lends it to one attempt at a time: an
attempt waits on a local condition, not on the server. Slots are never held without the
server's lease, so the global limit stays strict across workers; one unused for `idle`
seconds goes back to the server, so a quiet worker does not starve busy ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["RateTokens", "SlotPool"]


class SlotPool:
    """At most `size` server slots taken with `take()` (a context manager holding one slot of
    the global limit), lent to one attempt at a time."""

    def __init__(
        self, take: Callable[[], AbstractContextManager[object]], size: int, idle: float = 2.0
    ) -> None:
        self.size = size
        self.idle = idle
        self._take = take
        self._cond = threading.Condition()
        self._free = 0  # slots held from the server and not lent
        self._held = 0  # holders alive: holding a slot or waiting for the server
        self._lent = 0
        self._waiting = 0
        self._errors: list[Exception] = []
        self._last_used = time.monotonic()

    @contextmanager
    def lend(self) -> Iterator[None]:
        """One slot for the block; a holder's error (e.g. a missing limit) is raised here."""
        with self._cond:
            self._waiting += 1
            try:
                self._wait_for_free()
            finally:
                self._waiting -= 1
            self._free -= 1
            self._lent += 1
        try:
            yield
        finally:
            with self._cond:
                self._lent -= 1
                self._free += 1
                self._last_used = time.monotonic()
                self._cond.notify_all()

    def release_idle(self, wait: float = 10.0) -> None:
        """Give every slot no attempt is using back to the server now (waiting up to `wait`
        seconds for the releases): called when this process's last task using it ends, so
        an exiting worker does not keep slots until their leases expire."""
        deadline = time.monotonic() + wait
        with self._cond:
            self._last_used = float("-inf")
            self._cond.notify_all()
            while self._held > self._lent and time.monotonic() < deadline:
                self._cond.wait(0.05)

    def _wait_for_free(self) -> None:
        while not self._free:
            if self._errors:
                raise self._errors.pop()
            taking = self._held - self._free - self._lent  # holders waiting for the server
            if self._held < self.size and taking < self._waiting:
                self._held += 1
                threading.Thread(target=self._hold, name="slot-holder", daemon=True).start()
            self._cond.wait()

    def _hold(self) -> None:
        """A holder thread: take a server slot, lend it until it has been idle, give it back."""
        try:
            with self._take(), self._cond:
                self._free += 1
                self._errors.clear()  # the server answers again: old errors are stale
                self._cond.notify_all()
                self._until_idle()
        except Exception as error:
            with self._cond:
                self._errors.append(error)
                self._cond.notify_all()
        finally:
            with self._cond:
                self._held -= 1
                self._cond.notify_all()

    def _until_idle(self) -> None:
        """Return (with one free slot taken back) once no attempt used a slot for `idle` s."""
        while True:
            self._cond.wait(self.idle)
            quiet = time.monotonic() - self._last_used >= self.idle
            if self._free and not self._waiting and quiet:
                self._free -= 1
                return


class RateTokens:
    """Rate-limit slots taken from the server a few at a time (`take(n)` takes n in one call)
    and spent by this process's attempts within `shelf` seconds, or dropped: one server write
    serves up to `batch` attempts, and a token is never spent long after the server gave it,
    so the rate seen by the API exceeds the limit's by at most `batch` calls in any window."""

    def __init__(self, take: Callable[[int], object], batch: int, shelf: float = 1.0) -> None:
        self.batch = max(1, batch)
        self.shelf = shelf
        self._take = take
        self._lock = threading.Lock()
        self._tokens: list[float] = []  # expiry times, oldest first

    def spend(self) -> None:
        """One token: a saved one, else a fresh batch from the server (waiting as it says)."""
        with self._lock:  # one fetch at a time; the others find its tokens
            now = time.monotonic()
            while self._tokens and self._tokens[0] < now:
                self._tokens.pop(0)
            if not self._tokens:
                self._take(self.batch)
                self._tokens = [time.monotonic() + self.shelf] * self.batch
            self._tokens.pop()
