"""One HTTP error mapping for both generative APIs (Gemini, OpenAI-compatible).

`STATUS_TABLE` is the shared part: HTTP status -> our error class (whether the failure is
retried follows from the class: RetryableGenerationError or not), what happened and what the
user should do. A provider (gemini_errors.py, openai_errors.py) reads its own error body into
an `ApiFailure` and may override a row for what only it says: an invalid key in a 400, a
blocked prompt, quota used up in a 429, Google's status names. Failures that never produced
an HTTP answer (httpx exceptions) and answers that are not JSON are mapped here too, so no
client turns a foreign error into one of ours by itself. No message ever holds a secret:
every text built from a server answer goes through the caller's scrubber.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx

from product_images.errors import (
    AuthenticationError,
    BadRequestError,
    GenerationError,
    GenerationTimeoutError,
    ModelNotFoundError,
    NoImageError,
    PermanentGenerationError,
    RateLimitedError,
    RetryableGenerationError,
    UpstreamServerError,
)

__all__ = [
    "STATUS_TABLE",
    "ApiFailure",
    "Caller",
    "Provider",
    "StatusRule",
    "error_for",
    "error_from_response",
    "error_message",
    "json_object",
    "parse_retry_after",
    "parse_retry_delay",
    "read_json",
    "rule_for",
    "transport_error",
]


@dataclass(frozen=True)
class StatusRule:
    """One row: the error class, what happened, what to do. `what` and `todo` may name
    {model}, {base_url}, {models}, {location} and the provider's settings ({key_setting},
    {model_setting}, {base_url_setting}, {rpm_setting}, {settings})."""

    error: type[GenerationError]
    what: str
    todo: str

    @property
    def retryable(self) -> bool:
        """Whether the backoff loop tries again (and a product that ends on it is deferred)."""
        return issubclass(self.error, RetryableGenerationError)


_RETRIED = "nothing: it is retried with backoff, then the product is deferred"
_AUTH = StatusRule(AuthenticationError, "refused the request", "check {key_setting}")
_REJECTED = StatusRule(
    BadRequestError, "request rejected", "fix the request or the settings ({settings})"
)
_REDIRECT = StatusRule(BadRequestError, "redirected to {location}", "check {base_url_setting}")
_SERVER = StatusRule(UpstreamServerError, "server error", _RETRIED)

#: The shared table. Statuses not listed: other 3xx as a redirect, other 4xx as 400, other
#: 5xx as 500 (`rule_for`).
STATUS_TABLE: Mapping[int, StatusRule] = MappingProxyType(
    {
        400: _REJECTED,
        401: _AUTH,
        402: StatusRule(
            PermanentGenerationError,
            "out of prepaid credits",
            "add credits or billing to the account",
        ),
        403: _AUTH,
        404: StatusRule(
            ModelNotFoundError,
            "model not found",
            "set {model_setting} to {models}; if the id is right, check "
            "{base_url_setting}={base_url}",
        ),
        408: StatusRule(GenerationTimeoutError, "timed out upstream", _RETRIED),
        429: StatusRule(
            RateLimitedError,
            "rate limited",
            _RETRIED + "; if it persists, lower {rpm_setting}",
        ),
        # 499: the server cancelled the request (gRPC CANCELLED); nothing wrong with it.
        499: StatusRule(UpstreamServerError, "request cancelled upstream", _RETRIED),
        500: _SERVER,
        502: _SERVER,
        503: _SERVER,
        504: StatusRule(UpstreamServerError, "server timed out", _RETRIED),
    }
)


def rule_for(status: int) -> StatusRule:
    """The shared row for an HTTP status."""
    if status in STATUS_TABLE:
        return STATUS_TABLE[status]
    if 300 <= status < 400:
        return _REDIRECT
    return _SERVER if status >= 500 else _REJECTED


@dataclass(frozen=True)
class ApiFailure:
    """What an error answer said, as a provider reads it. `code` is the provider's own name
    for the error (Gemini's error.status, OpenAI's error.code); `note` is added to the
    message as is (e.g. a request id)."""

    status: int
    message: str = ""
    code: str = ""
    retry_after: float | None = None
    location: str = ""
    note: str = ""
    tags: frozenset[str] = frozenset()  # further provider names: ErrorInfo reasons, error.type


@dataclass(frozen=True)
class Provider:
    """One API's specifics on top of the table: how to read its error bodies, which rows its
    own codes override, and the names of its settings for the messages."""

    label: str
    settings: Mapping[str, str]
    read: Callable[[httpx.Response, Any], ApiFailure]
    override: Callable[[ApiFailure], StatusRule | None]


@dataclass(frozen=True)
class Caller:
    """Who made the call: for the message and the scrubbing."""

    provider: Provider
    model: str
    base_url: str
    models: str  # what a 404 suggests
    scrub: Callable[[object], str]

    def prefix(self) -> str:
        return f"{self.provider.label} {self.model}"


def error_for(failure: ApiFailure, caller: Caller) -> GenerationError:
    """The typed error for `failure`: the provider's row if it has one, else the table's."""
    rule = caller.provider.override(failure) or rule_for(failure.status)
    fields = {
        **caller.provider.settings,
        "model": caller.model,
        "base_url": caller.base_url,
        "models": caller.models,
        "location": failure.location or "?",
    }
    said = error_message(failure.message) if failure.message.strip() else "no message"
    where = f"HTTP {failure.status}{' ' + failure.code if failure.code else ''}: {said}"
    message = (
        f"{caller.prefix()}: {rule.what.format(**fields)} ({where}{failure.note}): "
        f"{rule.todo.format(**fields)}"
    )
    error = rule.error(caller.scrub(message), status=failure.status)
    if isinstance(error, RetryableGenerationError):
        error.retry_after = failure.retry_after
    return error


def error_from_response(
    response: httpx.Response, caller: Caller, payload: Any = None
) -> GenerationError:
    """The typed error for a non-2xx answer, or for an error body wrapped in a 2xx
    (`payload`, already decoded)."""
    return error_for(caller.provider.read(response, payload), caller)


# --------------------------------------------------------------------------- foreign errors


def transport_error(exc: httpx.HTTPError, caller: Caller) -> GenerationError:
    """Our error for an httpx failure that produced no HTTP answer."""
    detail = caller.scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, httpx.TimeoutException):
        return GenerationTimeoutError(f"{caller.prefix()}: no answer in time ({detail})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return BadRequestError(f"{caller.prefix()}: invalid URL ({detail}); check the base URL")
    return UpstreamServerError(f"{caller.prefix()}: connection failed ({detail})")


def read_json(response: httpx.Response) -> Any:
    """The decoded body, or None when it is not JSON (or not text at all)."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def json_object(response: httpx.Response, caller: Caller) -> dict[str, Any]:
    """The JSON object of a 2xx answer; NoImageError (retried) when it is anything else."""
    payload = read_json(response)
    if isinstance(payload, dict):
        return payload
    text = response.text
    snippet = caller.scrub(error_message(text, 200)) if text.strip() else "empty body"
    raise NoImageError(
        f"{caller.prefix()}: the answer was not a JSON object ({snippet})",
        status=response.status_code,
    )


def error_message(text: str, limit: int = 500) -> str:
    """One line of at most `limit` characters from an API error message."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- server hints

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
        return _seconds_until(value, now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _seconds_until(http_date: str, now: datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
