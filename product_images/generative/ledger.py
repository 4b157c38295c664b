"""The cost ledger: one append-only record per paid-API attempt, kept in the store.

Each attempt is its own object (`_ledger/YYYY-MM-DD/<time>-<id>.json`, see store.layout):
appending never rewrites anything, so concurrent workers cannot lose each other's records.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from pydantic import Field

from product_images.generative.base import Attempt
from product_images.manifest import CallRecord
from product_images.model_catalogue import ModelPrice
from product_images.store import Store
from product_images.store.layout import LEDGER, ledger_key

__all__ = ["Ledger", "LedgerEntry", "summarise"]


class LedgerEntry(CallRecord):
    """One call to a paid API, with when, for which product and under which catalog tag."""

    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    sku: str
    tag: str = ""


def price_of(attempt: Attempt, prices: dict[str, ModelPrice]) -> float:
    """USD for one attempt from the tokens the API reported (0 when the model is unpriced).

    An image answered without usage (some relays report none) costs the catalogue's list
    price per image rather than nothing."""
    price = prices.get(attempt.model)
    if price is None:
        return 0.0
    if attempt.outcome == "ok" and attempt.usage.output_tokens == 0 and price.image_usd:
        return price.image_usd + price.cost(attempt.usage.prompt_tokens, 0)
    return price.cost(attempt.usage.prompt_tokens, attempt.usage.output_tokens)


class Ledger:
    """Appends entries to the store and reads them back."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, entry: LedgerEntry) -> None:
        """Write one entry as its own object."""
        key = ledger_key(entry.time, uuid.uuid4().hex[:8])
        self.store.put(key, entry.model_dump_json().encode(), "application/json")

    def entries(self) -> list[LedgerEntry]:
        """Every entry, oldest first."""
        return [
            LedgerEntry.model_validate_json(self.store.get(key)) for key in self.store.list(LEDGER)
        ]


def summarise(entries: list[LedgerEntry], by: str) -> dict[str, tuple[int, float]]:
    """(calls, USD) per day, tag or model."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for entry in entries:
        label = {"day": f"{entry.time:%Y-%m-%d}", "tag": entry.tag or "-", "model": entry.model}[by]
        totals[label][0] += 1
        totals[label][1] += entry.cost_usd
    return {k: (int(v[0]), round(v[1], 6)) for k, v in sorted(totals.items())}


def entry_from(
    attempt: Attempt, sku: str, variant: str, tag: str, prices: dict[str, ModelPrice]
) -> LedgerEntry:
    """The ledger entry for one attempt."""
    return LedgerEntry(
        sku=sku,
        variant=variant,
        backend=attempt.backend,
        model=attempt.model,
        outcome=attempt.outcome,
        http_status=attempt.http_status,
        prompt_tokens=attempt.usage.prompt_tokens,
        output_tokens=attempt.usage.output_tokens,
        cost_usd=round(price_of(attempt, prices), 6),
        seconds=round(attempt.seconds, 3),
        tag=tag,
    )


__all__ += ["entry_from", "price_of"]
