"""Refreshes at half price: the Gemini Batch API fills the generation cache first.

Every uncached first-take generation of the products to redo is submitted as batch jobs; the
results go into the same cache and ledger as synchronous calls (priced at the batch rate), so
the normal run that follows finds them and makes no paid call for them. Whatever a batch could
not make (a per-request error, an expired or failed job) is simply left uncached: the normal
run then makes it with a synchronous call, through the same post-processing and checks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from product_images.backends import MasterContext, route
from product_images.backends.generative import GenerativeBackend, estimate_cost
from product_images.errors import BatchJobError, GenerationError, ProductError
from product_images.generative.base import Attempt, GenerationRequest, GenerationResult, Usage
from product_images.generative.budget import RunBudget
from product_images.generative.cache import GenerationCache
from product_images.generative.clients import make_batch_client
from product_images.generative.configured_model import batch_discount, price_table
from product_images.generative.ledger import Ledger, entry_from
from product_images.model_catalogue import ModelPrice
from product_images.pipeline import cut_out, load_source, platforms_of
from product_images.refresh import refresh_reasons
from product_images.request import ProductRequest, check_sku
from product_images.settings import Settings
from product_images.store import Store
from product_images.wiring import Wiring

__all__ = ["PrefillReport", "prefill_refresh", "prefill_with_batch_api"]


@dataclass
class PrefillReport:
    """What the batch pre-fill did."""

    submitted: int = 0
    made: int = 0
    left_for_sync: list[str] = field(default_factory=list)  # "sku/variant: reason"
    cost_usd: float = 0.0


@dataclass(frozen=True)
class _Job:
    request: GenerationRequest
    sku: str
    variant: str
    tag: str


@dataclass(frozen=True)
class _Pricing:
    """How batch results are booked: prices from the model catalogue, at its Batch discount."""

    prices: dict[str, ModelPrice]
    discount: float
    model: str


def prefill_with_batch_api(requests: list[ProductRequest], wiring: Wiring) -> PrefillReport:
    """Make the uncached generations of `requests` with the Batch API; see the module doc."""
    store, settings = wiring.store, wiring.settings
    backend = wiring.generative()
    if backend is None or backend.name != "gemini":
        return PrefillReport()
    if batch_discount(settings, backend.choice) is None:
        note = f"{backend.choice.model} has no Batch API (model catalogue): normal calls"
        return PrefillReport(left_for_sync=[note])
    jobs: dict[str, _Job] = {}
    for request in requests:
        try:
            jobs.update(_jobs_for(request, backend, store, settings))
        except ProductError:
            continue  # the normal run reports this product's error
    if not jobs:
        return PrefillReport()
    return _run_jobs(jobs, backend, store, settings, requests[0].run_id)


def prefill_refresh(requests: list[ProductRequest], wiring: Wiring) -> PrefillReport:
    """Batch the generations of the products this refresh will redo (the forced ones too)."""
    todo = [r for r in requests if r.force or refresh_reasons(r, wiring.store, wiring.settings)]
    return prefill_with_batch_api(todo, wiring)


def _jobs_for(
    request: ProductRequest, backend: GenerativeBackend, store: Store, settings: Settings
) -> dict[str, _Job]:
    sku = check_sku(request.sku)
    source = load_source(request, settings)
    product = cut_out(source, request.source, settings)
    context = MasterContext(
        sku=sku, source_sha256=source.sha256, store=store, fields=request.prompt_fields()
    )
    cache, jobs = GenerationCache(store), {}
    variants = sorted({v for p in platforms_of(request, settings) for v in p.variants()})
    for variant in variants:
        if route(variant, product.cutout.confidence, backend, settings) is not backend:
            continue
        key = backend.first_take_key(variant, settings, context)
        if not cache.has(key):
            generation = backend.request_for(variant, product, settings, context)
            jobs[key] = _Job(generation, sku, variant, request.tag)
    return jobs


def _run_jobs(
    jobs: dict[str, _Job], backend: GenerativeBackend, store: Store, settings: Settings, run_id: str
) -> PrefillReport:
    discount = batch_discount(settings, backend.choice) or 1.0
    estimate = discount * sum(
        estimate_cost(backend.choice, settings, j.request.prompt, len(j.request.images))
        for j in jobs.values()
    )
    budget = RunBudget(store, run_id or uuid.uuid4().hex, settings.generation.budget_usd)
    held = budget.reserve(estimate)  # BudgetExceededError: no batch; products are skipped as usual
    report = PrefillReport(submitted=len(jobs))
    try:
        outcomes = _submit(jobs, settings, report)
        pricing = _Pricing(price_table(settings, backend.choice), discount, backend.choice.model)
        _book(outcomes, jobs, store, pricing, report)
    finally:  # released even when the batch dies: only what was booked stays spent
        budget.settle(held, report.cost_usd)
    report.left_for_sync += [
        f"{j.sku}/{j.variant}: no batch result" for k, j in jobs.items() if k not in outcomes
    ]
    return report


def _submit(
    jobs: dict[str, _Job], settings: Settings, report: PrefillReport
) -> dict[str, GenerationResult | GenerationError]:
    """Each job's result or error; none when the submission itself failed."""
    try:
        with make_batch_client(settings) as client:
            try:
                return client.run({key: job.request for key, job in jobs.items()})
            except BatchJobError as error:
                return dict(error.results)
    except GenerationError as error:
        report.left_for_sync.append(f"batch submission failed: {error}")
        return {}


def _book(
    outcomes: dict[str, GenerationResult | GenerationError],
    jobs: dict[str, _Job],
    store: Store,
    pricing: _Pricing,
    report: PrefillReport,
) -> None:
    """Cache every image and write one ledger entry per request, at the batch price."""
    cache, ledger = GenerationCache(store), Ledger(store)
    for key, outcome in outcomes.items():
        job = jobs[key]
        if isinstance(outcome, GenerationResult):
            cache.put(
                key,
                outcome.image,
                {"mime_type": outcome.mime_type, "model": outcome.model, "batch": True},
            )
            attempt = Attempt("gemini-batch", outcome.model, "ok", 200, outcome.usage, 0.0)
            report.made += 1
        else:
            attempt = Attempt(
                "gemini-batch", pricing.model, outcome.reason, outcome.status, Usage(), 0.0
            )
            report.left_for_sync.append(f"{job.sku}/{job.variant}: {outcome.reason}")
        entry = entry_from(attempt, job.sku, job.variant, job.tag, pricing.prices)
        discounted = round(entry.cost_usd * pricing.discount, 6)
        entry = entry.model_copy(update={"cost_usd": discounted})
        ledger.append(entry)
        report.cost_usd += entry.cost_usd
