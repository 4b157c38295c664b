"""What both HTTP image clients share: the secret key, the scrubber, the pooled httpx client,
one request with its errors mapped (http_errors.py), the backoff policy and the
context-manager plumbing."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from product_images.errors import GenerationError, SettingsError
from product_images.generative.backoff import AttemptInfo, RandomSource, call_with_backoff
from product_images.generative.base import AttemptHooks, ImageGenerator
from product_images.generative.breaker import CircuitBreaker
from product_images.generative.call_limiter import CallLimiter, unlimited
from product_images.generative.http_errors import (
    Caller,
    Provider,
    error_from_response,
    transport_error,
)
from product_images.generative.redact import Scrubber, proxy_password
from product_images.generative.throttle import AdaptiveRate

__all__ = ["HttpImageGenerator", "check_base_url", "make_http_client", "sniff_image_type"]

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
    #: The API's error specifics, and the model a 404 suggests when the catalogue is unknown.
    provider: ClassVar[Provider]
    fallback_model: ClassVar[str]
    base_url: str

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

    def _caller(self) -> Caller:
        models = self.suggested_models(self.fallback_model)
        return Caller(self.provider, self.model, self.base_url, models, self._scrub)

    def _send(
        self, info: AttemptInfo, method: str, url: str, ok: Collection[int] = (), **options: Any
    ) -> httpx.Response:
        """One request: its response when 2xx (or in `ok`), else the typed error."""
        failure: GenerationError | None = None
        try:
            response = self._http.request(method, url, **options)
        except httpx.HTTPError as exc:
            failure = transport_error(exc, self._caller())
        if failure is not None:
            # Raised outside the except block: the httpx exception (which holds the request
            # and its auth header) is not chained onto ours.
            raise failure
        info.http_status = response.status_code
        if not response.is_success and response.status_code not in ok:
            raise error_from_response(response, self._caller())
        return response

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


def make_http_client(
    *,
    connect_timeout: float,
    read_timeout: float,
    proxy: str | None,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    """One pooled, thread-safe client. No default auth headers: the key is added per request
    so the httpx.Client never holds it."""
    return httpx.Client(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        proxy=proxy if transport is None else None,
        transport=transport,
        follow_redirects=False,
        headers={"user-agent": "product-images"},
    )


def check_base_url(base_url: str, setting: str) -> str:
    """The base URL without trailing slashes; SettingsError unless it is http(s)."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{setting} must be an http(s) URL, got {url!r}")
    return url


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
)


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type the bytes start like (png, jpeg, webp, gif), or None."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
