"""A run's spending cap, held in the store so it binds every worker of the run, on any machine.

The run's budget is a log of numbered entries under `_budget/<run>/` (see store.layout). Each
entry carries the run's running totals after it: `committed` (settled spend plus what calls in
flight have reserved) and `spent`. An entry is written with `put_if_absent` (S3
`If-None-Match: *`, O_EXCL on a folder), so exactly one writer gets each number and every
writer has read the entry before it: a reservation is granted against the true total of all
earlier ones. Two workers racing for a number: the loser reads the winner's entry and tries
the next number. Nobody lists the log: a reader starts from `head.json`, a hint of the newest
number rewritten every few entries, and reads on until a number is free.

A call reserves its worst-case cost before it is made and settles its real cost after (a
failed call settles what it was billed, often 0), so the cap holds while calls are in flight.
A worker that dies between the two leaves its reservation held: the run may stop short of
its cap, never pass it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from product_images.errors import BudgetExceededError, ObjectNotFoundError, StorageError
from product_images.store import Store
from product_images.store.layout import budget_entry_key, budget_head_key

__all__ = ["BudgetEntry", "Reservation", "RunBudget"]

#: Races lost in a row before giving up: far beyond what a run's workers produce.
_MAX_RACES = 1000
#: The head hint (the newest entry's number, so no one lists the log) is rewritten every this
#: many entries: a fresh reader walks at most this many entries plus those in flight.
_HEAD_EVERY = 16


class BudgetEntry(BaseModel):
    """One step of a run's budget log, with the run's totals after it."""

    kind: str  # "reserve" or "settle"
    usd: float  # what this step reserved, or the real cost it settled
    committed: float  # spent + everything still reserved, after this step
    spent: float  # real cost settled so far, after this step
    owner: str = ""


_START = BudgetEntry(kind="start", usd=0.0, committed=0.0, spent=0.0)


@dataclass(frozen=True)
class Reservation:
    """What `reserve` held, to settle once the call's real cost is known."""

    usd: float


class RunBudget:
    """The budget of run `run_id` in `store`; no cap (None) means nothing is written."""

    def __init__(self, store: Store, run_id: str, cap_usd: float | None) -> None:
        if cap_usd is not None and not run_id:
            raise ValueError("a capped budget needs the run's id: every worker shares it")
        self.store, self.run_id, self.cap_usd = store, run_id, cap_usd
        self.owner = uuid.uuid4().hex[:12]
        # The newest entry this object wrote: the next write tries the number after it
        # (no listing); a number taken meanwhile is read and skipped, as in any race.
        self._cursor: tuple[int, BudgetEntry] | None = None

    def reserve(self, estimate_usd: float) -> Reservation:
        """Hold `estimate_usd` for a call, or raise BudgetExceededError if it could pass the cap."""
        if self.cap_usd is None:
            return Reservation(0.0)

        def step(last: BudgetEntry) -> BudgetEntry:
            self._refuse_over(last, estimate_usd)
            return BudgetEntry(
                kind="reserve", usd=estimate_usd, committed=last.committed + estimate_usd,
                spent=last.spent, owner=self.owner,
            )  # fmt: skip

        self._append(step)
        return Reservation(estimate_usd)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost (0 to release it)."""
        if self.cap_usd is None:
            return

        def step(last: BudgetEntry) -> BudgetEntry:
            committed = max(0.0, last.committed - reservation.usd) + actual_usd
            return BudgetEntry(
                kind="settle", usd=actual_usd, committed=committed,
                spent=last.spent + actual_usd, owner=self.owner,
            )  # fmt: skip

        self._append(step)

    def check(self, estimate_usd: float) -> None:
        """Raise BudgetExceededError if `estimate_usd` more could not be reserved now (reads
        only: what is still affordable when the calls are made is for `reserve` to say)."""
        if self.cap_usd is not None:
            self._refuse_over(self.totals(), estimate_usd)

    def _refuse_over(self, last: BudgetEntry, estimate_usd: float) -> None:
        cap = self.cap_usd
        if cap is not None and last.committed + estimate_usd > cap + 1e-9:
            raise BudgetExceededError(
                f"budget of ${cap:.2f} reached (spent ${last.spent:.4f}, "
                f"${last.committed - last.spent:.4f} held by calls in flight); "
                "no further paid calls in this run"
            )

    def totals(self) -> BudgetEntry:
        """The run's totals as the log stands now."""
        return self._last()[1]

    def _append(self, step: Callable[[BudgetEntry], BudgetEntry]) -> None:
        """Write the entry `step` makes from the newest one, as the next number."""
        seq, last = self._cursor or self._last()
        for _ in range(_MAX_RACES):
            entry = self._next(step, seq, last)
            if entry is not None and self._put(seq + 1, entry):
                self._cursor = (seq + 1, entry)
                return
            seq, last = seq + 1, self._read(seq + 1)  # another worker took the number
        raise StorageError(f"budget of run {self.run_id!r}: too many concurrent writers")

    def _next(
        self, step: Callable[[BudgetEntry], BudgetEntry], seq: int, last: BudgetEntry
    ) -> BudgetEntry | None:
        """What follows entry `seq`; None when a newer entry exists (a refusal judged on a
        stale total would not stand)."""
        try:
            return step(last)
        except BudgetExceededError:
            if self.store.exists(budget_entry_key(self.run_id, seq + 1)):
                return None
            raise

    def _put(self, seq: int, entry: BudgetEntry) -> bool:
        """Write entry `seq` unless another worker holds that number (False)."""
        key, data = budget_entry_key(self.run_id, seq), entry.model_dump_json().encode()
        if not self.store.put_if_absent(key, data, "application/json"):
            return False
        if seq % _HEAD_EVERY == 0:
            head = json.dumps({"seq": seq}).encode()
            self.store.put(budget_head_key(self.run_id), head, "application/json")
        return True

    def _last(self) -> tuple[int, BudgetEntry]:
        """(number, entry) of the newest entry; (-1, zeros) for a run with none yet. The head
        hint may lag (it is written every few entries, last writer wins): walk on from it."""
        seq = self._head()
        last = self._read(seq) if seq >= 0 else _START
        while (newer := self._get(seq + 1)) is not None:
            seq, last = seq + 1, newer
        return seq, last

    def _head(self) -> int:
        try:
            return int(json.loads(self.store.get(budget_head_key(self.run_id)))["seq"])
        except ObjectNotFoundError:
            return -1

    def _get(self, seq: int) -> BudgetEntry | None:
        try:
            return BudgetEntry.model_validate_json(
                self.store.get(budget_entry_key(self.run_id, seq))
            )
        except ObjectNotFoundError:
            return None

    def _read(self, seq: int) -> BudgetEntry:
        entry = self._get(seq)
        if entry is None:
            raise StorageError(f"budget entry {seq} of run {self.run_id!r} is missing")
        return entry
