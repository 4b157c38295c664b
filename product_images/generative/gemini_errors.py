"""Gemini's specifics on top of the shared status table (http_errors.py).

Gemini answers errors as a google.rpc.Status: ``{"error": {"code": <HTTP status>, "message",
"status": "RESOURCE_EXHAUSTED", "details": [...]}}`` (some endpoints wrap it in a list, some
relays in a 200). The server's delay is google.rpc.RetryInfo's retryDelay (else Retry-After);
an invalid key comes as a 400 with ErrorInfo reason API_KEY_INVALID; a 400's message says
which setting to fix. The Batch API reports per-request errors as a Status with the *gRPC*
code: `status_of` turns it into the HTTP status Google's own mapping gives, so a request
fails with the same error in a batch job as in a synchronous call.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx

from product_images.errors import AuthenticationError, BadRequestError
from product_images.generative.http_errors import (
    STATUS_TABLE,
    ApiFailure,
    Provider,
    StatusRule,
    parse_retry_after,
    parse_retry_delay,
    read_json,
)

__all__ = ["GEMINI", "GRPC_TO_HTTP", "failure_from_rpc_status", "failure_from_status", "status_of"]

#: google.rpc.Code -> (HTTP status, status name), as Google's HTTP mapping has it.
GRPC_TO_HTTP: Mapping[int, tuple[int, str]] = MappingProxyType(
    {
        1: (499, "CANCELLED"),
        2: (500, "UNKNOWN"),
        3: (400, "INVALID_ARGUMENT"),
        4: (504, "DEADLINE_EXCEEDED"),
        5: (404, "NOT_FOUND"),
        6: (409, "ALREADY_EXISTS"),
        7: (403, "PERMISSION_DENIED"),
        8: (429, "RESOURCE_EXHAUSTED"),
        9: (400, "FAILED_PRECONDITION"),
        10: (409, "ABORTED"),
        11: (400, "OUT_OF_RANGE"),
        12: (501, "UNIMPLEMENTED"),
        13: (500, "INTERNAL"),
        14: (503, "UNAVAILABLE"),
        15: (500, "DATA_LOSS"),
        16: (401, "UNAUTHENTICATED"),
    }
)
_HTTP_OF_NAME = {name: status for status, name in GRPC_TO_HTTP.values()}


def status_of(code: Any, name: str, *, grpc: bool) -> int:
    """The HTTP status of an error: a known status name wins, then the code (a gRPC code when
    `grpc`, though relays may put the HTTP status there), else 500."""
    if name.upper() in _HTTP_OF_NAME:
        return _HTTP_OF_NAME[name.upper()]
    if grpc and isinstance(code, int) and code in GRPC_TO_HTTP:
        return GRPC_TO_HTTP[code][0]
    if isinstance(code, int) and 400 <= code < 600:
        return code
    return 500


def _error_body(response: httpx.Response, payload: Any) -> Any:
    body = read_json(response) if payload is None else payload
    if isinstance(body, list) and body:  # some endpoints answer [{"error": ...}]
        body = body[0]
    return body.get("error") if isinstance(body, Mapping) else body


def _read(response: httpx.Response, payload: Any) -> ApiFailure:
    """A Gemini error answer (or an error wrapped in a 2xx `payload`)."""
    error = _error_body(response, payload)
    status = response.status_code
    if not isinstance(error, Mapping):  # no Status: show what the body says
        location = response.headers.get("location", "") if 300 <= status < 400 else ""
        return ApiFailure(status, response.text if payload is None else "", location=location)
    if status < 300:  # wrapped in a 2xx: the body's own code says what it is
        status = status_of(error.get("code"), str(error.get("status") or ""), grpc=False)
    return failure_from_status(error, status, response.headers.get("retry-after"))


def failure_from_status(
    error: Mapping[str, Any], status: int, retry_after: str | None = None
) -> ApiFailure:
    """An ApiFailure from a google.rpc.Status already placed at an HTTP `status`."""
    raw = error.get("details")
    details = [d for d in raw if isinstance(d, Mapping)] if isinstance(raw, list) else []
    return ApiFailure(
        status,
        str(error.get("message") or ""),
        code=str(error.get("status") or "").upper(),
        retry_after=_retry_delay(details) or parse_retry_after(retry_after),
        tags=frozenset(str(d["reason"]) for d in details if d.get("reason")),
    )


def failure_from_rpc_status(status: Mapping[str, Any]) -> ApiFailure:
    """An ApiFailure from a Batch API per-request Status (a gRPC code, or a name)."""
    code, name = status.get("code"), str(status.get("status") or "")
    if not name and isinstance(code, int) and code in GRPC_TO_HTTP:
        name = GRPC_TO_HTTP[code][1]
    http = status_of(code, name, grpc=True)
    return failure_from_status({**status, "status": name}, http)


def _retry_delay(details: list[Mapping[str, Any]]) -> float | None:
    """Seconds from google.rpc.RetryInfo in the error details."""
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay", detail.get("retry_delay"))
            if isinstance(delay, str):
                return parse_retry_delay(delay)
    return None


_BAD_KEY = StatusRule(AuthenticationError, "rejected the API key", "check {key_setting}")
_REFUSED = StatusRule(
    AuthenticationError,
    "refused the request",
    "check {key_setting} and gemini_auth (PRODUCT_IMAGES_GEMINI_AUTH: 'header' sends "
    "x-goog-api-key as Google's API expects, 'bearer' sends Authorization: Bearer as most "
    "relays expect)",
)

#: What a 400's message (or status name) says to fix: (words, what to do).
_FIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("imagesize", "image_size", "image size"),
        "check the image size setting PRODUCT_IMAGES_GEMINI_IMAGE_SIZE (512, 1K, 2K or 4K; "
        "only Gemini 3 image models take it, and 512 only 3.1 Flash Image)",
    ),
    (
        ("aspectratio", "aspect_ratio", "aspect ratio"),
        "the aspect ratio is not one {model} supports: check the slot's aspect ratio in the "
        "platform spec",
    ),
    (
        ("modalit",),
        "{model} does not generate images: set GEMINI_MODEL to {models}",
    ),
    (
        ("failed_precondition",),
        "the free tier is not available here: enable billing on the project",
    ),
    (
        ("too large", "payload", "size limit"),
        "the request is too large: send smaller or fewer input images (~20 MB total)",
    ),
)


def _override(failure: ApiFailure) -> StatusRule | None:
    """Gemini's rows: an invalid key (a 400), the auth hint (401/403), a 400's fix."""
    status = failure.status
    if "API_KEY_INVALID" in failure.tags or "API key not valid" in failure.message:
        return _BAD_KEY
    if status in (401, 403):
        return _REFUSED
    if status == 400 or (400 < status < 500 and status not in STATUS_TABLE):
        return _fix_for(failure)
    return None


def _fix_for(failure: ApiFailure) -> StatusRule | None:
    text = f"{failure.message} {failure.code}".lower()
    for words, fix in _FIXES:
        if any(word in text for word in words):
            return StatusRule(BadRequestError, "request rejected", fix)
    return None


GEMINI = Provider(
    label="Gemini",
    settings=MappingProxyType(
        {
            "key_setting": "GEMINI_API_KEY",
            "model_setting": "GEMINI_MODEL (or PRODUCT_IMAGES_GEMINI_MODEL)",
            "base_url_setting": "GEMINI_BASE_URL",
            "rpm_setting": "PRODUCT_IMAGES_GEMINI_RPM",
            "settings": "GEMINI_MODEL, image size, prompt",
        }
    ),
    read=_read,
    override=_override,
)
