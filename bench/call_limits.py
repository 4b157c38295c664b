"""What the generative call limits cost per HTTP attempt: the in-process limiter, and the
Prefect global limits (a concurrency slot plus a rate-limit slot) against a temporary server.

    .venv/bin/python bench/call_limits.py [--attempts 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from product_images.generative.call_limiter import InProcessLimiter
from product_images.settings import Settings


def _per_slot(limiter, attempts: int) -> list[float]:
    seconds = []
    for _ in range(attempts):
        started = time.perf_counter()
        with limiter.slot():
            pass
        seconds.append(time.perf_counter() - started)
    return seconds


def _report(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    print(
        f"{label}: {len(ms)} slots, median {statistics.median(ms):.3f} ms, "
        f"p95 {ms[int(len(ms) * 0.95) - 1]:.3f} ms, max {ms[-1]:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=200)
    args = parser.parse_args()
    fast = Settings(gemini_rpm=1e7, gemini_concurrency=8)  # limits that never make anyone wait
    _report("in-process", _per_slot(InProcessLimiter(8, fast.limits.gemini_rpm), args.attempts))

    from prefect.testing.utilities import prefect_test_harness

    from product_images.tasks.global_limits import PrefectCallLimiter, ensure_concurrency_limits

    with prefect_test_harness(server_startup_timeout=90):
        ensure_concurrency_limits(fast)
        limiter = PrefectCallLimiter("gemini")
        _per_slot(limiter, 5)  # warm the client
        _report("prefect global limits", _per_slot(limiter, args.attempts))


if __name__ == "__main__":
    main()
