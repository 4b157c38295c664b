"""Native thread pools held to one thread: products already run side by side.

numpy's OpenBLAS starts a thread per core for every matrix product of a few thousand rows (the
background model's least squares) and its idle threads spin while they wait. With products on
every core (threads, worker processes) those threads only fight each other: on this 2-core
machine a 320x240 photo's background refit cost 0.31 s of CPU with two BLAS threads and 0.07 s
with one (bench/RESULTS.md §8). Results do not change: OpenBLAS splits a product by output
blocks, each computed the same way whatever the thread count.
"""

from __future__ import annotations

from functools import cache

from threadpoolctl import threadpool_limits

__all__ = ["single_threaded_blas"]


@cache
def single_threaded_blas() -> None:
    """Hold this process's BLAS to one thread (once; a process-wide setting)."""
    threadpool_limits(limits=1, user_api="blas")
