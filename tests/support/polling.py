"""Waiting in tests for something another process does (a server starting, a manifest
appearing), with one rule for how long and what to say when it does not happen."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    describe: Callable[[], str] = str,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.3,
) -> None:
    """Return once `ready()`; raise AssertionError with `describe()` if the process it waits
    on dies (`alive()` false) or `timeout` seconds pass first."""
    give_up = time.monotonic() + timeout
    while not ready():
        if not alive():
            raise AssertionError(f"stopped while waiting: {describe()}")
        if time.monotonic() >= give_up:
            raise AssertionError(f"not ready after {timeout:.0f} s: {describe()}")
        time.sleep(interval)
