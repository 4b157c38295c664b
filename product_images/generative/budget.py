"""A run's spending cap: no paid call is made once it could pass the cap."""

from __future__ import annotations

import threading

from product_images.errors import BudgetExceededError

__all__ = ["RunBudget", "budget_for"]


class RunBudget:
    """Thread-safe: a call reserves its worst-case cost first, then settles the real one."""

    def __init__(self, cap_usd: float | None) -> None:
        self.cap_usd = cap_usd
        self.spent_usd = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, estimate_usd: float) -> None:
        """Hold `estimate_usd` for a call, or raise BudgetExceededError if it could pass the cap."""
        with self._lock:
            if self.cap_usd is not None and (
                self.spent_usd + self._reserved + estimate_usd > self.cap_usd
            ):
                raise BudgetExceededError(
                    f"budget of ${self.cap_usd:.2f} reached (spent ${self.spent_usd:.4f}); "
                    "no further paid calls in this run"
                )
            self._reserved += estimate_usd

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost."""
        with self._lock:
            self._reserved = max(0.0, self._reserved - estimate_usd)
            self.spent_usd += actual_usd


_BUDGETS: dict[str, RunBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(run_id: str, cap_usd: float | None) -> RunBudget:
    """The budget shared by every product of one run in this process."""
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(run_id)
        if budget is None or budget.cap_usd != cap_usd:
            budget = _BUDGETS[run_id] = RunBudget(cap_usd)
        return budget
