"""OpenAI's specifics on top of the shared status table (http_errors.py).

OpenAI-compatible APIs answer errors as ``{"error": {"message", "type", "param", "code"}}``
(some relays as ``{"message"}`` or ``{"detail"}``). The server's delay is the
``retry-after-ms`` header, else ``Retry-After``; ``x-request-id`` goes into the message for
support. Its own codes override the table: a moderation block (a 400) is ContentBlockedError,
and a 429 ``insufficient_quota`` is permanent (no wait brings credits back).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx

from product_images.errors import ContentBlockedError, PermanentGenerationError
from product_images.generative.http_errors import (
    ApiFailure,
    Provider,
    StatusRule,
    parse_retry_after,
    read_json,
)

__all__ = ["BLOCKED_CODES", "OPENAI"]

#: Error codes (or types) of a refused prompt or image: permanent, not a bad setting.
BLOCKED_CODES = frozenset({"moderation_blocked", "content_policy_violation"})


def _message(body: Any, text: str) -> tuple[str, Mapping[str, Any]]:
    """(the message, the error object) of an error body."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        return str(error.get("message") or ""), error
    if isinstance(body, Mapping):
        return str(body.get("message") or body.get("detail") or ""), {}
    return text, {}


def _read(response: httpx.Response, payload: Any) -> ApiFailure:
    """An OpenAI error answer."""
    message, error = _message(read_json(response) if payload is None else payload, response.text)
    request_id = response.headers.get("x-request-id")
    status = response.status_code
    return ApiFailure(
        status,
        message,
        code=str(error.get("code") or ""),
        retry_after=_retry_after(response.headers),
        location=response.headers.get("location", "") if 300 <= status < 400 else "",
        note=f"; request id {request_id}" if request_id else "",
        tags=frozenset({str(error.get("type") or "")}) - {""},
    )


def _retry_after(headers: httpx.Headers) -> float | None:
    milliseconds = parse_retry_after(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    return parse_retry_after(headers.get("retry-after"))


_BLOCKED = StatusRule(
    ContentBlockedError,
    "refused the request",
    "retrying will not help; change the prompt template or the source image",
)
_NO_QUOTA = StatusRule(PermanentGenerationError, "out of quota", "check the account's billing")


def _override(failure: ApiFailure) -> StatusRule | None:
    """OpenAI's rows: a moderation block, quota used up."""
    if failure.code in BLOCKED_CODES or failure.tags & BLOCKED_CODES:
        return _BLOCKED
    if failure.status == 429 and failure.code == "insufficient_quota":
        return _NO_QUOTA
    return None


OPENAI = Provider(
    label="OpenAI",
    settings=MappingProxyType(
        {
            "key_setting": "OPENAI_API_KEY",
            "model_setting": "OPENAI_MODEL (or PRODUCT_IMAGES_OPENAI_MODEL)",
            "base_url_setting": "OPENAI_BASE_URL",
            "rpm_setting": "PRODUCT_IMAGES_OPENAI_RPM",
            "settings": "OPENAI_MODEL, input image format and size",
        }
    ),
    read=_read,
    override=_override,
)
