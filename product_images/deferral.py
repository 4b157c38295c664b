"""Deferred products: which errors defer a product instead of failing it, and the inline
engine's small loop that tries a deferred product again within the run.

A product is deferred when its generation ended on a RetryableGenerationError (the backend's
circuit breaker was open, or every retry met a 429, 5xx, timeout or empty answer) or when the
store failed under it. Neither says anything about the product itself, so it is reported
"deferred", kept for `product-images retry`, and never shown as failed.

Within a run, only generation deferrals are tried again, after the breaker's cool-down: the
breaker says when the backend may be back; a store outage gives no such signal. The Prefect
flows do the same with task retries (`tasks/product.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from product_images.errors import (
    BackendUnavailableError,
    ProductError,
    RetryableGenerationError,
    StorageUnavailableError,
)
from product_images.settings import Settings

__all__ = ["deferral_delay", "is_deferred", "retry_deferred", "retry_in_run"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_deferred(error: BaseException) -> bool:
    """Whether this product error means "try again later" rather than "failed"."""
    return isinstance(error, RetryableGenerationError | StorageUnavailableError)


def retry_in_run(error: BaseException) -> bool:
    """Whether a deferred product is worth another try within the same run."""
    return isinstance(error, RetryableGenerationError)


def deferral_delay(error: BaseException, settings: Settings) -> float:
    """Seconds before the next try: what is left of the breaker's cool-down when it was open,
    else a whole cool-down (the retries just spent showed the backend in trouble)."""
    if isinstance(error, BackendUnavailableError) and error.retry_after is not None:
        return error.retry_after
    return settings.limits.breaker_cooldown


def retry_deferred(
    make: Callable[[], T], settings: Settings, sleep: Callable[[float], None] = time.sleep
) -> T:
    """`make()`, tried again up to `settings.limits.defer_retries` times while it raises an error
    worth retrying in the run, each time after `deferral_delay`; the last error propagates."""
    for tries_left in range(settings.limits.defer_retries, -1, -1):
        try:
            return make()
        except ProductError as error:
            if tries_left == 0 or not retry_in_run(error):
                raise
            delay = deferral_delay(error, settings)
            log.warning("deferred (%s); trying again in %.1fs: %s", error.reason, delay, error)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
