"""BLAS held to one thread in every process that does pixel work (products run side by side,
and idle OpenBLAS threads spin)."""

from __future__ import annotations

from threadpoolctl import threadpool_info

from product_images.native_threads import single_threaded_blas
from product_images.preload import warm_up
from product_images.workers import PixelPool


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_runs_on_one_thread_after_the_call() -> None:
    single_threaded_blas()
    threads = _blas_threads()
    assert threads and set(threads) == {1}


def test_a_pixel_worker_runs_blas_on_one_thread() -> None:
    pool = PixelPool(1, warm_up)
    try:
        threads = pool.run(_blas_threads)
    finally:
        pool.shutdown()
    assert threads and set(threads) == {1}
