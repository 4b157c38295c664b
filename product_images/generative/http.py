"""What both HTTP image clients share: the secret key, the scrubber, the pooled httpx client,
the retry policy and the context-manager plumbing."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

import httpx
from pydantic import SecretStr

from product_images.generative.backoff import (
    AttemptInfo,
    RandomSource,
    Scrubber,
    call_with_backoff,
    make_http_client,
    proxy_password,
)
from product_images.generative.base import AttemptHooks, ImageGenerator
from product_images.generative.breaker import CircuitBreaker
from product_images.generative.call_limiter import CallLimiter, unlimited
from product_images.generative.throttle import AdaptiveRate

__all__ = ["HttpImageGenerator"]

T = TypeVar("T")


class HttpImageGenerator(ImageGenerator):
    """Base of the Gemini and OpenAI clients: one pooled, thread-safe httpx client each.

    `limiter`, `breaker` and the adaptive `throttle` guard every HTTP attempt;
    `make_generator` sets them from the settings (a client built directly has none), and
    `current_models` from the model catalogue: the ids a 404 suggests."""

    limiter: CallLimiter = unlimited
    breaker: CircuitBreaker | None = None
    throttle: AdaptiveRate | None = None
    current_models: tuple[str, ...] = ()

    def suggested_models(self, fallback: str) -> str:
        """The current model ids for an error message, or `fallback` when none are known."""
        if not self.current_models:
            return f"an image model, e.g. {fallback}"
        return "a current image model: " + ", ".join(self.current_models)

    def _setup(
        self,
        key: str,
        *,
        model: str,
        connect_timeout: float,
        read_timeout: float,
        proxy: str | None,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
        rng: RandomSource | None,
    ) -> None:
        self._key = SecretStr(key)
        self._scrub = Scrubber([key, proxy_password(proxy)])
        self.model = model
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = make_http_client(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            proxy=proxy,
            transport=transport,
        )

    def _with_backoff(
        self, attempt: Callable[[AttemptInfo], T], hooks: AttemptHooks | None
    ) -> tuple[T, int]:
        """`attempt` under this client's retry policy; (value, number of attempts)."""
        return call_with_backoff(
            attempt,
            backend=self.name,
            model=self.model,
            hooks=hooks,
            max_attempts=self.max_attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            sleep=self._sleep,
            rng=self._rng,
            scrub=self._scrub,
            limiter=self.limiter,
            breaker=self.breaker,
            throttle=self.throttle,
        )

    def check_available(self) -> None:
        """Raise BackendUnavailableError while the circuit breaker is open."""
        if self.breaker is not None:
            self.breaker.check()

    def share_rate(self, listener: Callable[[float], None]) -> None:
        """Call `listener(requests per second)` whenever the adaptive rate changes."""
        if self.throttle is not None:
            self.throttle.subscribe(listener)

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
