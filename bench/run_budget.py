"""What the run budget in the store costs per paid call, against the ledger append every paid
call already makes (the reference, measured in the same run on the same store).

A product's paid call opens the budget fresh (reserve: one listing of the run's entries, one
read, one conditional put), then settles (one conditional put). Measured with the run's log
already holding `--entries` entries, on a local folder and on a SeaweedFS server this script
starts.

    nice .venv/bin/python bench/run_budget.py [--calls 100] [--entries 0 2000]

5 Dec 2026, busy 2-core machine, medians of 100: local 10.2 ms/call (2.3-2.8x a ledger
append), SeaweedFS 23-26 ms/call (11-13x a 2 ms append), flat from 0 to 2000 entries in the
log (a first version that listed the log took 387 ms/call on S3 at 2000 entries).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from product_images.generative.budget import RunBudget
from product_images.generative.ledger import Ledger, LedgerEntry
from product_images.store import LocalStore, S3Store, Store
from product_images.testing.seaweedfs import SeaweedServer


def _median_ms(action: Callable[[], None], calls: int) -> float:
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000


def _fill(store: Store, run_id: str, entries: int) -> None:
    budget = RunBudget(store, run_id, 1e9)
    for _ in range(entries // 2):
        budget.settle(budget.reserve(0.1), 0.05)


def _paid_call(store: Store, run_id: str) -> None:
    budget = RunBudget(store, run_id, 1e9)  # a fresh one, as each product's hooks make
    budget.settle(budget.reserve(0.1), 0.05)


def _measure(name: str, store: Store, calls: int, entries: int) -> None:
    run_id = uuid.uuid4().hex
    _fill(store, run_id, entries)
    ledger = Ledger(store)
    entry = LedgerEntry(sku="S", variant="white", backend="b", model="m", outcome="ok")
    reference = _median_ms(lambda: ledger.append(entry), calls)
    budget = _median_ms(lambda: _paid_call(store, run_id), calls)
    print(
        f"{name:6s} log {entries:5d} entries: budget {budget:7.2f} ms/call, "
        f"ledger append {reference:6.2f} ms, ratio {budget / reference:5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--entries", type=int, nargs="+", default=[0, 2000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, SeaweedServer(Path(folder) / "weed") as server:
        server.create_bucket("bench")
        s3 = S3Store("bench", client=server.client())
        for entries in args.entries:
            _measure("local", LocalStore(Path(folder) / "out"), args.calls, entries)
            _measure("s3", s3, args.calls, entries)


if __name__ == "__main__":
    main()
