"""Pixel work on every core: a pool of worker processes for the CPU-bound steps of products.

Much of the pixel work is Python-level numpy that holds the GIL, so one process makes at most
one core's worth of products however many threads it runs (bench/RESULTS.md, throughput).
The pipeline sends its pixels-only steps (decoding and cutting out the source) to a pool of
`processes` workers; the generative calls stay on the threads of the calling process, so
their limits, circuit breaker and adaptive rate stay whole (one per process).

Workers are started with "spawn" (the calling process runs threads: forking it could copy a
held lock) and run `initializer` once before any work: the pipeline passes its `warm_up`,
which loads what every product needs (the spec tables, the segmenter's model), so nothing
heavy is loaded per product. A worker that dies (killed, out of memory) fails the one product
it was working on with a RenderError; the pool is started afresh for the next. A worker whose
parent died (SIGKILLed: no chance to stop its pool) exits on its own within a second.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from product_images.errors import RenderError

__all__ = ["PixelPool", "pixel_pool", "shutdown_pools"]

T = TypeVar("T")


class PixelPool:
    """`processes` worker processes, started on first use, each warmed up by `initializer`."""

    def __init__(self, processes: int, initializer: Callable[[], None]) -> None:
        self.processes = processes
        self._initializer = initializer
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def run(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` in a worker; its errors are raised here (a ProductError as itself)."""
        executor = self._started()
        try:
            return executor.submit(call, *args).result()
        except BrokenProcessPool as error:
            self._discard(executor)
            raise RenderError(
                f"a pixel worker process died while working on this product ({error}); "
                "too large a photo for the memory available?"
            ) from None

    def shutdown(self) -> None:
        """Stop the workers (they start again on the next `run`)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=functools.partial(_start_worker, os.getpid(), self._initializer),
                )
            return self._executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)


def _start_worker(parent: int, initializer: Callable[[], None]) -> None:
    """In a new worker: watch for the parent's death, then warm up."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    initializer()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


_POOLS: dict[tuple[int, Callable[[], None]], PixelPool] = {}
_POOLS_LOCK = threading.Lock()


def pixel_pool(processes: int, initializer: Callable[[], None]) -> PixelPool:
    """The process's pool of `processes` workers warmed up by `initializer` (one per pair)."""
    with _POOLS_LOCK:
        key = (processes, initializer)
        if key not in _POOLS:
            _POOLS[key] = PixelPool(processes, initializer)
        return _POOLS[key]


def shutdown_pools() -> None:
    """Stop every pool's workers (tests; a long-lived process letting go of its memory)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        pool.shutdown()
