"""The end-of-run summary of a catalog: what was done, what failed or was deferred, and why."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from product_images.manifest import ProductResult

__all__ = ["CatalogSummary"]


class CatalogSummary(BaseModel):
    """Every product's result, with counts."""

    results: list[ProductResult]

    @property
    def done(self) -> int:
        """Products with a manifest."""
        return sum(r.status == "done" for r in self.results)

    @property
    def failed(self) -> list[ProductResult]:
        """Products that could not be made."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def skipped(self) -> list[ProductResult]:
        """Products not made because the run's budget was reached."""
        return [r for r in self.results if r.status == "skipped"]

    @property
    def deferred(self) -> list[ProductResult]:
        """Products put off because their backend (or the store) was in trouble: not failed,
        `product-images retry` makes them."""
        return [r for r in self.results if r.status == "deferred"]

    @property
    def unchanged(self) -> int:
        """Products skipped by an incremental run because nothing they depend on changed."""
        return sum(r.status == "unchanged" for r in self.results)

    @property
    def cost_usd(self) -> float:
        """What the run's generations cost."""
        return round(sum(r.cost_usd for r in self.results), 6)

    @property
    def needs_review(self) -> int:
        """Products made but flagged for a person to look at."""
        return sum(r.needs_review for r in self.results)

    def failure_reasons(self) -> Counter[str]:
        """How many products failed for each reason."""
        return Counter(r.reason for r in self.failed)

    def lines(self) -> list[str]:
        """A human summary: totals, then one line per failed, deferred or skipped product."""
        head = (
            f"{len(self.results)} products: {self.done} done "
            f"({self.needs_review} need review), {len(self.failed)} failed"
        )
        if self.unchanged:
            head += f", {self.unchanged} unchanged"
        if self.skipped:
            head += f", {len(self.skipped)} skipped for budget"
        if self.deferred:
            head += f", {len(self.deferred)} deferred"
        paid = sum(r.paid_calls for r in self.results)
        if paid or self.cost_usd:
            head += f"; {paid} paid calls, ${self.cost_usd:.4f}"
        lines = [head] + [f"FAILED {r.sku}: [{r.reason}] {r.message}" for r in self.failed]
        lines += [f"DEFERRED {r.sku}: [{r.reason}] {r.message}" for r in self.deferred]
        lines += [
            f"NEEDS REVIEW {r.sku}: {'; '.join(r.review_reasons) or 'see its manifest'}"
            for r in self.results
            if r.needs_review
        ]
        return lines + [f"SKIPPED {r.sku}: {r.message}" for r in self.skipped]
