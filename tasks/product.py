"""Task: one whole product (refresh check, prepare, render, publish) for catalog runs.

A catalog run uses one task per product rather than one per step: Prefect costs ~25 ms of
client and server work per task run, and the three steps of a product always run together.

A product deferred by its generative backend (circuit breaker open, or retries used up on
429/5xx/timeouts) is retried by Prefect after the breaker's cool-down, `defer_retries` times;
any other failure is final. Its cached generations make a retry cost nothing for the masters
already made.
"""

from __future__ import annotations

import threading
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from product_images.deferral import retry_in_run
from product_images.manifest import ProductResult
from product_images.request import ProductRequest
from product_images.runner import make_product
from product_images.settings import Settings, get_settings
from product_images.tasks._store import store_at
from product_images.tasks.global_limits import prefect_call_limits
from product_images.tasks.secrets import resolved_settings
from product_images.wiring import Wiring, wire

__all__ = ["make_product_task", "product_task", "retry_if_deferred"]

_LOCK = threading.Lock()
_WIRINGS: dict[tuple[int, str], tuple[Settings, Wiring]] = {}  # see _wiring


def retry_if_deferred(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry_condition_fn: retry a product only when its backend deferred it."""
    try:
        state.result()
    except Exception as error:
        return retry_in_run(error)
    return False


@task(
    name="make-product",
    cache_policy=NO_CACHE,
    task_run_name="product-{request.sku}",
    retries=get_settings().limits.defer_retries,
    retry_delay_seconds=get_settings().limits.breaker_cooldown,
    retry_condition_fn=retry_if_deferred,
)
def make_product_task(request: ProductRequest, store_url: str) -> ProductResult:
    """All masters, slots and the manifest of one product, unless it is unchanged; raises
    ProductError on bad input. Generative calls take the Prefect global limits."""
    wiring = _wiring(store_url)
    with prefect_call_limits(wiring):
        return make_product(request, wiring)


def _wiring(store_url: str) -> Wiring:
    """The wiring of this process's settings and `store_url`, made once: a worker runs many
    products, and wiring each anew would open a new API connection per product (~20 ms of CPU
    and a handshake). The same settings and store give the same wiring, so no result depends
    on which product made it; new settings (another object) get their own."""
    settings = resolved_settings()
    key = (id(settings), store_url)
    with _LOCK:
        held = _WIRINGS.get(key)
        if held is None or held[0] is not settings:
            if len(_WIRINGS) >= 8:
                _WIRINGS.clear()  # settings re-read many times: keep only recent ones
            held = _WIRINGS[key] = (settings, wire(settings, store_at(store_url)))
        return held[1]


def product_task(settings: Settings) -> Task[Any, ProductResult]:
    """`make_product_task` with the deferral retries of `settings` (read now, not at import)."""
    return make_product_task.with_options(
        retries=settings.limits.defer_retries, retry_delay_seconds=settings.limits.breaker_cooldown
    )
