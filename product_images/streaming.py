"""Results of a long run in order, with only a bounded window of work in flight.

Submitting every item of a 2,000-product catalog at once holds 2,000 futures (and their
results, and for Prefect their task states) until the end of the run: the run's memory then
grows with the catalog. `windowed` submits ahead only `window` items past the oldest one not
collected, and lets each future go as soon as its result is handed on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["windowed"]

T = TypeVar("T")
F = TypeVar("F")
R = TypeVar("R")


def windowed(
    items: Iterable[T], submit: Callable[[T], F], collect: Callable[[T, F], R], window: int
) -> Iterator[R]:
    """`collect(item, submit(item))` for every item, in order, with at most `window` items
    submitted and not yet collected."""
    pending: deque[tuple[T, F]] = deque()
    for item in items:
        pending.append((item, submit(item)))
        if len(pending) >= max(1, window):
            yield collect(*pending.popleft())
    while pending:
        yield collect(*pending.popleft())
