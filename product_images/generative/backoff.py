"""HTTP backoff shared by the generative clients: delays, server hints and the attempt loop.

("backoff" is the retrying of one HTTP call; the `retry` command, which reruns failed
products, lives in the CLI and product_images.deferral; Prefect task retries in tasks/.)

Also the few HTTP helpers both clients need to turn transport failures into our error
classes without ever letting a secret (API key, proxy password) into a message.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar, cast
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

from product_images.errors import (
    BadRequestError,
    GenerationError,
    GenerationTimeoutError,
    RetryableGenerationError,
    SettingsError,
    UpstreamServerError,
)
from product_images.generative.base import Attempt, AttemptHooks, Usage
from product_images.generative.breaker import CircuitBreaker
from product_images.generative.call_limiter import CallLimiter, unlimited
from product_images.generative.throttle import AdaptiveRate

__all__ = [
    "AttemptInfo",
    "Scrubber",
    "backoff_delay",
    "call_with_backoff",
    "check_base_url",
    "clean_api_key",
    "error_message",
    "make_http_client",
    "parse_retry_after",
    "parse_retry_delay",
    "proxy_password",
    "sniff_image_type",
    "transport_error",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class RandomSource(Protocol):
    """Anything with random() in [0, 1): random.Random, or a stub in tests."""

    def random(self) -> float: ...


# --------------------------------------------------------------------------- delays


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    rng: RandomSource | None = None,
    jitter: Literal["equal", "full", "none"] = "equal",
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first try).

    The ceiling doubles per attempt: base, 2*base, 4*base... capped at `cap`.
    "equal" jitter (the default) waits between half the ceiling and the ceiling, so a retry
    after a 429 never comes back immediately; "full" waits anywhere in [0, ceiling].
    """
    if base <= 0 or cap <= 0:
        return 0.0
    exponent = min(max(attempt, 1) - 1, 60)  # 2**60 * base is past any cap; no overflow
    ceiling = min(cap, base * 2.0**exponent)
    if jitter == "none":
        return ceiling
    draw = (rng or random).random()
    if jitter == "full":
        return ceiling * draw
    return ceiling / 2 + ceiling / 2 * draw


_DURATION = re.compile(r"^\s*(\d+)(?:\.(\d{1,9}))?s\s*$")


def parse_retry_delay(value: str) -> float | None:
    """Seconds from a google.protobuf.Duration JSON string ("15s", "0.5s", "1.200s").

    None when the value is not a non-negative Duration string.
    """
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    if not match:
        return None
    seconds, fraction = match.groups()
    return int(seconds) + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from an HTTP Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


# ------------------------------------------------------------------------ secrets


class Scrubber:
    """Replaces secrets (the API key in its plain and URL-encoded forms, a proxy password)
    with '***' in any text built from server answers or httpx errors."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:  # a 1-3 char "secret" would mangle every text
                forms.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first, so a secret containing another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        result = str(text)
        for form in self._forms:
            result = result.replace(form, "***")
        return result


def clean_api_key(api_key: str | SecretStr | None, setting: str) -> str:
    """The key as a plain string, stripped; SettingsError (never naming the key's value) when it
    is empty or holds characters no HTTP header can carry."""
    key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    key = (key or "").strip()
    if not key:
        raise SettingsError(f"the API key is empty: set {setting}")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise SettingsError(
            f"the API key in {setting} contains spaces, control or non-ASCII characters"
        )
    return key


def proxy_password(proxy: str | None) -> str | None:
    """The password of a proxy URL (http://user:pass@host:port), to scrub it."""
    if not proxy:
        return None
    try:
        return urlsplit(proxy).password
    except ValueError:
        return None


# --------------------------------------------------------------------------- HTTP


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


def transport_error(
    exc: httpx.HTTPError, backend: str, model: str, scrub: Scrubber
) -> GenerationError:
    """Our error for an httpx failure that produced no HTTP answer."""
    detail = scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, httpx.TimeoutException):
        return GenerationTimeoutError(f"{backend} {model}: no answer in time ({detail})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return BadRequestError(f"{backend} {model}: invalid URL ({detail}); check the base URL")
    return UpstreamServerError(f"{backend} {model}: connection failed ({detail})")


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


def error_message(text: str, limit: int = 500) -> str:
    """One line of at most `limit` characters from an API error message."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- retries


@dataclass
class AttemptInfo:
    """What one attempt learnt, filled in by the client as it goes, so the Attempt record is
    complete even when the attempt fails (a text-only answer is still billed)."""

    http_status: int | None = None
    usage: Usage = field(default_factory=Usage)


def call_with_backoff(
    attempt: Callable[[AttemptInfo], T],
    *,
    backend: str,
    model: str,
    hooks: AttemptHooks | None = None,
    max_attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    rng: RandomSource | None = None,
    scrub: Callable[[str], str] = str,
    limiter: CallLimiter = unlimited,
    breaker: CircuitBreaker | None = None,
    throttle: AdaptiveRate | None = None,
) -> tuple[T, int]:
    """Run `attempt` until it succeeds, a permanent error, or `max_attempts`; (value, tries).

    Every attempt waits for its turn at the adaptive `throttle` (which its outcome then
    moves), holds a `limiter` slot and goes through the `breaker`. hooks.before() runs
    before every attempt and hooks.after() after every attempt with its Attempt record. An
    open breaker (BackendUnavailableError) and an error of hooks.before() (BudgetExceededError)
    propagate untouched: no call was made, nothing is recorded. Only RetryableGenerationError
    is retried; the wait is the exponential backoff, or the server's hint (RetryInfo /
    Retry-After) when that is longer, never more than `max_delay`. After the last attempt the
    last error is re-raised.
    """
    hooks = hooks or AttemptHooks()
    max_attempts = max(1, max_attempts)
    for number in range(1, max_attempts + 1):
        info = AttemptInfo()
        value, error, seconds = _attempt_once(attempt, info, hooks, (limiter, breaker, throttle))
        hooks.after(_attempt_record(backend, model, info, seconds, error, scrub))
        if error is None:
            return cast(T, value), number
        if not isinstance(error, RetryableGenerationError) or number >= max_attempts:
            raise error
        delay = backoff_delay(number, base_delay, max_delay, rng)
        delay = min(max(delay, error.retry_after or 0.0), max_delay)
        log.warning(
            "%s %s: attempt %d/%d failed (%s), retrying in %.2fs: %s",
            backend,
            model,
            number,
            max_attempts,
            error.reason,
            delay,
            scrub(str(error)),
        )
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


_Guards = tuple[CallLimiter, CircuitBreaker | None, AdaptiveRate | None]


def _attempt_once(
    attempt: Callable[[AttemptInfo], T], info: AttemptInfo, hooks: AttemptHooks, guards: _Guards
) -> tuple[T | None, Exception | None, float]:
    """(value, error, seconds) of one call; errors raised before the call propagate."""
    limiter, breaker, throttle = guards
    # The throttle's turn comes before the concurrency slot: waiting for it holds no slot.
    ticket = throttle.wait() if throttle else 0.0
    started: float | None = None
    value: T | None = None
    error: Exception | None = None
    try:
        with limiter.slot(), breaker.guard() if breaker else nullcontext():
            hooks.before()
            started = time.monotonic()
            value = attempt(info)
    except Exception as exc:
        if started is None:  # refused before any request went out: nothing to record
            raise
        error = exc
    if throttle:
        throttle.record(ticket, error)
    return value, error, time.monotonic() - started


def _attempt_record(
    backend: str,
    model: str,
    info: AttemptInfo,
    seconds: float,
    error: Exception | None,
    scrub: Callable[[str], str],
) -> Attempt:
    """The ledger's record of one attempt that reached the API."""
    status = info.http_status
    if status is None and isinstance(error, GenerationError):
        status = error.status
    return Attempt(
        backend=backend,
        model=model,
        outcome="ok" if error is None else getattr(error, "reason", "error"),
        http_status=status,
        usage=info.usage,
        seconds=seconds,
        message="" if error is None else scrub(str(error)),
    )
