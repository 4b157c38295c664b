"""A stand-in for the Gemini and OpenAI image APIs on 127.0.0.1, for end-to-end client tests.

    with StandinServer(latency=0.1) as server:
        server.script("429-retryinfo:0.2s", "ok")      # next request 429, the one after normal
        post(f"{server.url}/v1beta/models/gemini-3.1-flash-image:generateContent", ...)

Routes (one base URL, `url`, for both protocols):

* Gemini: ``POST /v1beta/models/{model}:generateContent`` (JSON, camelCase or snake_case keys).
* Gemini Batch API: ``POST /v1beta/models/{model}:batchGenerateContent``,
  ``GET /v1beta/batches/{id}`` and ``POST /v1beta/batches/{id}:cancel`` (see "Batch jobs").
* OpenAI: ``POST /v1/images/edits`` (multipart/form-data).

Answers are images derived from the first input image: centred and scaled on a pure-white canvas
when the prompt says "white", cropped from the centre and scaled up when it says "detail" or
"close-up", otherwise on a soft studio backdrop; at the official output size of the model.

Authentication (checked first, on every generate request):

* Gemini: the key in ``x-goog-api-key``, else ``Authorization: Bearer``, else ``?key=``. No key:
  403 PERMISSION_DENIED. A wrong key: 400 INVALID_ARGUMENT "API key not valid" with a
  google.rpc.ErrorInfo of reason API_KEY_INVALID (both as the real API answers).
* OpenAI: ``Authorization: Bearer <key>``; missing or wrong: 401, code ``invalid_api_key``.

Then: unknown model (404), strict request validation (400), and only then the fault. Every
generate request takes exactly one fault, first from the `script` FIFO, else drawn at random with
the `set_fault_rates` probabilities (seeded), else "ok"; a request rejected by auth, model or
validation still uses up its fault. `latency` is added before every answer.

A normal Gemini answer: parts [image (PNG, camelCase inlineData; with a thoughtSignature on
Gemini 3 models), short text (only when TEXT is among responseModalities)], finishReason STOP,
usageMetadata, modelVersion, responseId. Faults, Gemini / OpenAI:

* "429": RESOURCE_EXHAUSTED with QuotaFailure + Help, no RetryInfo / 429 rate_limit_exceeded,
  no retry-after. "429-retryinfo[:0.2s]": the same plus RetryInfo retryDelay (default "1s") /
  plus retry-after (whole seconds, at least 1) and retry-after-ms headers.
* "500" INTERNAL, "503" UNAVAILABLE, "504" DEADLINE_EXCEEDED, "400" INVALID_ARGUMENT,
  "403" PERMISSION_DENIED, "404" NOT_FOUND / 500, 503, 504 server_error, 400 invalid_value,
  401 invalid_api_key, 404 model_not_found.
* "http:NNN" (300 <= NNN < 600): that status with the API's plain error body (Gemini: a
  google.rpc.Status named as Google's HTTP mapping names the status, e.g. 409 ABORTED / OpenAI:
  ``{"error": {"message", "type", "param", "code": null}}``); a 3xx answers an HTML body and a
  ``location`` header instead. For the error mapping's tests: every status, both providers.
* "timeout": no answer for `hang_seconds` (then a normal one); ends early, without answering,
  when the client disconnects or the server stops. Same for both.
* "malformed": 200 with truncated JSON. Same for both.
* "text-only": one candidate with a text part only, STOP. "no-candidates": "candidates": [].
  "safety": a candidate with finishReason IMAGE_SAFETY and no content. "blocked-prompt":
  promptFeedback.blockReason SAFETY and no candidates key. / OpenAI: 200 with "data": [] for
  "text-only" and "no-candidates"; 400 moderation_blocked for "safety" and "blocked-prompt".
* "wrong-aspect": the image at 16:9 for a 1:1 request, else at 1:1 / 1536x1024 for a 1024x1024
  request, else 1024x1024 (the "size" field still says what was asked).
* "snake-case": inline_data/mime_type; "text-first": the text part before the image (added even
  for IMAGE-only requests); "thought-images": a thought text part and a half-size image part
  marked "thought": true before the final image, plus thoughtsTokenCount / OpenAI: normal answers.
* "drift": a normal-looking answer whose product has changed colour (channels rotated), as when
  a model "improves" the product; for testing fidelity guards. Same for both.

Batch jobs (inline requests only; the file input mode is refused with a 400):

* Create: ``{"batch": {"display_name": ..., "input_config": {"requests": {"requests": [{"request":
  <GenerateContentRequest>, "metadata": {"key": ...}}, ...]}}}}`` (either key spelling). Same
  auth, model check and 20 MB body cap as generateContent; every inner request is validated like
  a generateContent body, and one invalid inner request rejects the whole batch with a 400 whose
  message and field path start ``batch.input_config.requests.requests[i].request`` (the real API
  may instead report it per request; not confirmed). The answer is a long-running Operation:
  ``{"name": "batches/<id>", "metadata": {"@type": ".../GenerateContentBatch", "name",
  "model", "displayName", "createTime", "updateTime", "batchStats", "state":
  "BATCH_STATE_PENDING"}}``.
* Every inner request takes one fault, in order, exactly as a generate request would (so `calls`
  counts them, and a batch rejected by auth or validation still uses them up). The inner answers
  are computed at creation: "ok" and the shape faults give ``{"response": <the
  GenerateContentResponse generateContent would give, usageMetadata included>}``; the error faults
  ("429", "500", "400", ...) give ``{"error": <google.rpc.Status>}`` with the *gRPC* code (8
  RESOURCE_EXHAUSTED, 13 INTERNAL, 3 INVALID_ARGUMENT, ...), message and details (RetryInfo
  included); "timeout" gives error 4 DEADLINE_EXCEEDED; "malformed" gives an entry with neither
  ``response`` nor ``error``. Each entry echoes the request's ``metadata``.
* Get: PENDING for the first half of `batch_seconds` (read when the job is created; default 0.5),
  RUNNING for the second half, then SUCCEEDED with ``"done": true`` and ``"response":
  {"@type": ".../GenerateContentBatchOutput", "inlinedResponses": {"inlinedResponses": [...]}}``,
  entries in request order. That nesting (a list inside an InlinedResponses object) is the real
  API's; ``metadata.output`` would carry a mirror of the output, which the stand-in leaves out.
  ``batchStats`` counts are int64 strings; zero counts are omitted, as proto-JSON does.
* Job faults: `script_batch` queues one per created job ("ok", "expired", "failed",
  "cancelled"), else the `set_batch_fault` default applies. A faulted job ends in
  BATCH_STATE_EXPIRED / FAILED / CANCELLED after `batch_seconds`, ``"done": true``, no
  ``response``, and (failed, cancelled) an ``"error"`` Status with code 13 / 1.
* Cancel: a job not yet finished becomes BATCH_STATE_CANCELLED at once; answers ``{}``.
  An unknown job id: 404 NOT_FOUND.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import contextlib
import datetime
import hashlib
import io
import json
import logging
import math
import random
import re
import secrets
import select
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

__all__ = [
    "BATCH_FAULTS",
    "DEFAULT_MODELS",
    "FAULTS",
    "RecordedRequest",
    "StandinServer",
    "main",
    "output_size",
    "set_image_cache_limit",
]

_LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"

DEFAULT_MODELS: tuple[str, ...] = (
    "gemini-nano-banana-2.1",
    "gemini-3.1-flash-lite-image",
    "gemini-3.1-flash-image",
    "gemini-3.1-flash-image-preview",
    "gemini-3-pro-image",
    "gemini-3-pro-image-preview",
    "gemini-2.5-flash-image",
    "gpt-image-1",
)

#: Every fault name `script` and `set_fault_rates` accept ("429-retryinfo:0.2s" sets the delay).
FAULTS: frozenset[str] = frozenset(
    {
        "ok",
        "429",
        "429-retryinfo",
        "500",
        "503",
        "504",
        "400",
        "403",
        "404",
        "http",
        "timeout",
        "malformed",
        "text-only",
        "no-candidates",
        "safety",
        "blocked-prompt",
        "wrong-aspect",
        "snake-case",
        "text-first",
        "thought-images",
        "drift",
    }
)

#: Job-level faults `set_batch_fault` and `script_batch` accept ("ok" = the job succeeds).
BATCH_FAULTS: frozenset[str] = frozenset({"ok", "expired", "failed", "cancelled"})

_JSON_TYPE = "application/json; charset=UTF-8"
_GEMINI_ROUTE = re.compile(r"^/v1beta/models/([^/:]+):generateContent$")
_BATCH_CREATE_ROUTE = re.compile(r"^/v1beta/models/([^/:]+):batchGenerateContent$")
_BATCH_ROUTE = re.compile(r"^/v1beta/(batches/[^/:]+)(:cancel)?$")
#: Routes whose requests each take one fault (a batch create takes one per inner request).
_GENERATE_ROUTES = frozenset({"gemini", "openai"})
_OPENAI_ROUTE = "/v1/images/edits"
_GEMINI_MAX_BODY = 20 * 1024 * 1024
_IMAGE_MIME = frozenset({"image/png", "image/jpeg", "image/webp"})
_PROMPT_IMAGE_TOKENS = 258  # Gemini: tokens per input image
_OPENAI_IMAGE_TOKENS = 323  # OpenAI: tokens per input image (stand-in constant)

# --------------------------------------------------------------------------- sizes and tokens

_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_RATIOS_31 = (*_RATIOS, "1:4", "4:1", "1:8", "8:1")

_SIZES_25: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

#: Gemini 3 at 1K; 2K and 4K are x2 and x4, "512" (3.1 Flash only) is half. The official table
#: prints 21:9 at 512 as 792x168, an evident typo for 792x336 (half of 1584x672): we use 792x336.
_SIZES_3_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (384, 3072),
    "8:1": (3072, 384),
}
_SCALE = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}

_IMAGE_SIZES: dict[str, tuple[str, ...]] = {
    "2.5": (),
    "3-pro": ("1K", "2K", "4K"),
    "3.1-flash": ("512", "1K", "2K", "4K"),
    "3.1-flash-lite": ("1K",),
    "nano-banana-2.1": ("1K", "2K", "4K"),
}
_OUTPUT_TOKENS: dict[str, dict[str | None, int]] = {
    "2.5": {None: 1290},
    "3-pro": {"1K": 1120, "2K": 1120, "4K": 2000},
    "3.1-flash": {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    "3.1-flash-lite": {"1K": 1120},
    "nano-banana-2.1": {"1K": 1120, "2K": 1680, "4K": 2520},
}

#: gpt-image-1 output tokens per image by quality and size.
_OPENAI_OUTPUT_TOKENS: dict[str, dict[str, int]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}


def _family(model: str) -> str:
    """Which size table and options a Gemini model has: "2.5", "3-pro", "3.1-flash",
    "3.1-flash-lite" or "nano-banana-2.1" (§7.1 of the research notes)."""
    if model.startswith("gemini-nano-banana-2"):
        return "nano-banana-2.1"
    if model.startswith("gemini-3.1-flash-lite"):
        return "3.1-flash-lite"
    if model.startswith("gemini-3.1"):
        return "3.1-flash"
    if model.startswith("gemini-3"):
        return "3-pro"
    return "2.5"


def _ratios(family: str) -> tuple[str, ...]:
    return _RATIOS_31 if family in ("3.1-flash", "nano-banana-2.1") else _RATIOS


def output_size(
    model: str, aspect_ratio: str = "1:1", image_size: str | None = None
) -> tuple[int, int]:
    """The official output (width, height) of a Gemini model; imageSize defaults to 1K."""
    family = _family(model)
    if family == "2.5":
        return _SIZES_25[aspect_ratio]
    width, height = _SIZES_3_1K[aspect_ratio]
    scale = _SCALE[image_size or "1K"]
    return round(width * scale), round(height * scale)


def _nearest_ratio(size: tuple[int, int], ratios: Sequence[str]) -> str:
    """The supported ratio closest to an input image's shape (the API's default)."""

    def distance(ratio: str) -> float:
        w, h = (int(v) for v in ratio.split(":"))
        return abs(math.log((w / h) / (size[0] / size[1])))

    return min(ratios, key=distance)


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


# --------------------------------------------------------------------------- faults


def _parse_fault(fault: str) -> tuple[str, float]:
    """(name, argument): the retry delay in seconds of "429-retryinfo[:0.2s]", the status of
    "http:NNN"; raises ValueError for an unknown fault."""
    name, _, argument = fault.partition(":")
    if name not in FAULTS or (argument and name not in ("429-retryinfo", "http")):
        raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
    if name == "http":
        if not re.fullmatch(r"[3-5]\d\d", argument):
            raise ValueError(f"bad status in {fault!r}: use http:NNN with 300 <= NNN < 600")
        return name, float(argument)
    if not argument:
        return name, 1.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s?", argument)
    if match is None:
        raise ValueError(f"bad retry delay in {fault!r}: use e.g. 429-retryinfo:0.2s")
    return name, float(match.group(1))


def _redirect(status: int) -> _Reply:
    """A 3xx as a misconfigured base URL or proxy answers it: HTML, and somewhere else."""
    location = (("location", "https://moved.invalid/v1beta"),)
    return _Reply(status, b"<html><body>Moved</body></html>", "text/html", location)


def _duration(seconds: float) -> str:
    """A google.protobuf.Duration in JSON: "1s", "0.2s"."""
    return f"{seconds:g}s"


# --------------------------------------------------------------------------- records and replies


@dataclass
class RecordedRequest:
    """One request the server received.

    `fault` is the fault this request used up (None off the generate routes); it only took
    effect if the request passed auth, model and validation checks. A batch create has no
    `fault` of its own: `batch_faults` holds the one each inner request used up, in order.
    `status` is the HTTP status answered, None while pending or when the client went away first
    (or the server stopped).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    fault: str | None
    time: float
    query: dict[str, str] = field(default_factory=dict)
    #: "gemini", "openai", "gemini-batch" (create), "gemini-batch-get",
    #: "gemini-batch-cancel" or None
    route: str | None = None
    status: int | None = None
    batch_faults: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = _JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


class _ApiError(Exception):
    """Raised while checking a request; carries the error answer."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers=headers)


# --------------------------------------------------------------------------- images

_CACHE_BYTES = 256 * 1024 * 1024  # the default; see set_image_cache_limit
_cache_limit = [_CACHE_BYTES]
_cache: collections.OrderedDict[tuple[object, ...], bytes] = collections.OrderedDict()
_cache_lock = threading.Lock()
_pending: dict[tuple[object, ...], threading.Lock] = {}


def _cached(key: tuple[object, ...], make: Callable[[], bytes]) -> bytes:
    """Encoded images by (input sha, size, style, format): repeated calls cost nothing, and
    concurrent first calls render once (one lock per key) instead of all at once."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        pending = _pending.setdefault(key, threading.Lock())
    with pending:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        data = make()
        with _cache_lock:
            _cache[key] = data
            _pending.pop(key, None)
            while sum(map(len, _cache.values())) > _cache_limit[0] and len(_cache) > 1:
                _cache.popitem(last=False)
    return data


def set_image_cache_limit(limit_bytes: int) -> None:
    """Bytes of encoded answers this process keeps, the most recent (default 256 MB; the most
    recent answer is always kept). The command-line server keeps fewer: a long benchmark sends
    distinct photos, whose answers are never asked for again."""
    with _cache_lock:
        _cache_limit[0] = max(0, limit_bytes)
        while sum(map(len, _cache.values())) > _cache_limit[0] and len(_cache) > 1:
            _cache.popitem(last=False)


def _style(prompt: str) -> str:
    """The look the prompt asks for: "backdrop" (the set without the product), "detail",
    "white" or "scene"."""
    text = prompt.lower()
    if "do not draw the product" in text:
        return "backdrop"
    if any(word in text for word in ("detail", "close-up", "closeup", "close up")):
        return "detail"
    return "white" if "white" in text else "scene"


def _render(
    source: bytes | None, size: tuple[int, int], style: str, fmt: str = "PNG", drift: bool = False
) -> bytes:
    """The answer image: `source` (or a drawn placeholder) composed at `size`, encoded."""
    digest = hashlib.sha256(source or b"").hexdigest()

    def make() -> bytes:
        image = _compose(source, size, style)
        if drift:  # the product changes colour; white stays white
            red, green, blue = image.split()
            image = Image.merge("RGB", (blue, red, green))
        return _encode(image, fmt)

    return _cached((digest, size, style, fmt, drift), make)


def _open(source: bytes | None) -> Image.Image:
    if source is None:
        return _placeholder()
    with Image.open(io.BytesIO(source)) as image:
        image.load()
        return ImageOps.exif_transpose(image).convert("RGBA")


def _placeholder() -> Image.Image:
    """A plain drawn product for text-only prompts."""
    image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    ImageDraw.Draw(image).rounded_rectangle((128, 96, 384, 416), 40, fill=(70, 110, 180, 255))
    return image


def _compose(source: bytes | None, size: tuple[int, int], style: str) -> Image.Image:
    if style == "backdrop":  # an empty set: wall, floor, no product and no shadow
        return _backdrop(size, 0.0, 0.7)
    product = _open(source)
    if style == "detail":
        return _detail(product, size)
    box = (max(1, size[0] * 4 // 5), max(1, size[1] * 4 // 5))
    fitted = ImageOps.contain(product, box, Image.Resampling.BICUBIC)
    left, top = (size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2
    if style == "white":
        canvas = Image.new("RGB", size, (255, 255, 255))
    else:
        canvas = _backdrop(size, fitted.width / size[0], (top + fitted.height) / size[1])
    canvas.paste(fitted, (left, top), fitted)
    return canvas


def _detail(product: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The centre half of the product, scaled up to fill the canvas."""
    width, height = product.size
    centre = product.crop((width // 4, height // 4, width - width // 4, height - height // 4))
    flat = Image.new("RGB", centre.size, (255, 255, 255))
    flat.paste(centre, (0, 0), centre)
    return ImageOps.fit(flat, size, Image.Resampling.BICUBIC)


def _backdrop(size: tuple[int, int], shadow_width: float, floor_at: float) -> Image.Image:
    """A soft studio backdrop: wall gradient, a floor, a blurred contact shadow at `floor_at`.

    Drawn at about 96 px and scaled up, so a 4K backdrop costs no more than a small one.
    """
    w, h = (
        max(4, round(96 * size[0] / max(size))),
        max(4, round(96 * size[1] / max(size))),
    )
    horizon = max(0.1, floor_at - 0.12)
    y = np.linspace(0.0, 1.0, h)[:, None]
    top, low = np.array([228, 225, 220]), np.array([204, 198, 190])
    wall = top + (low - top) * np.minimum(y / horizon, 1.0)
    floor = np.array([190, 182, 172]) - 30 * (y - horizon) / max(1e-6, 1 - horizon)
    rows = np.where(y < horizon, wall, floor)
    image = Image.fromarray(
        np.clip(np.repeat(rows[:, None, :], w, axis=1), 0, 255).astype(np.uint8)
    )
    half = w * shadow_width * 0.55
    shadow = (w / 2 - half, h * (floor_at - 0.03), w / 2 + half, h * (floor_at + 0.03))
    if shadow_width > 0:
        ImageDraw.Draw(image).ellipse(shadow, fill=(128, 120, 112))
    image = image.filter(ImageFilter.GaussianBlur(1.5))
    return image.resize(size, Image.Resampling.BILINEAR)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, "PNG", compress_level=1)
    elif fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=90)
    else:
        image.save(buffer, "WEBP", quality=85, method=0)
    return buffer.getvalue()


def _check_image(data: bytes) -> tuple[int, int] | None:
    """The image's size if Pillow can decode it, else None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


# --------------------------------------------------------------------------- Gemini: errors


def _rpc_error(
    code: int, status: str, message: str, details: Sequence[dict[str, Any]] = ()
) -> _Reply:
    """A google.rpc.Status error body."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return _json_reply(code, {"error": error})


def _invalid(message: str, field_path: str | None = None) -> _ApiError:
    """400 INVALID_ARGUMENT, with a google.rpc.BadRequest naming the field."""
    details = []
    if field_path is not None:
        violation = {"field": field_path, "description": message}
        details.append(
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
        )
    return _ApiError(_rpc_error(400, "INVALID_ARGUMENT", message, details))


def _model_not_found(model: str, method: str = "generateContent") -> _Reply:
    return _rpc_error(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version v1beta, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their "
        "supported methods.",
    )


def _quota_error(model: str, retry_delay: float | None) -> _Reply:
    """429 RESOURCE_EXHAUSTED with QuotaFailure and Help, and RetryInfo when a delay is given."""
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    )
    violation = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": "10",
    }
    link = {"description": "Learn more about Gemini API quotas", "url": message.split(": ")[1]}
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [link]},
    ]
    if retry_delay is not None:
        message += f" Please retry in {_duration(retry_delay)}."
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": _duration(retry_delay),
            }
        )
    return _rpc_error(429, "RESOURCE_EXHAUSTED", message, details)


_GEMINI_FAULT_ERRORS: dict[str, tuple[int, str, str]] = {
    "500": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "504": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "403": (403, "PERMISSION_DENIED", "The caller does not have permission"),
}


#: The status names of Google's HTTP mapping (google.rpc.Code), for "http:NNN" faults.
_GOOGLE_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _gemini_status_error(status: int) -> _Reply:
    if status < 400:
        return _redirect(status)
    name = _GOOGLE_STATUS_NAMES.get(status, "UNKNOWN" if status >= 500 else "FAILED_PRECONDITION")
    return _rpc_error(status, name, f"The stand-in answers HTTP {status} ({name}).")


def _gemini_auth(headers: dict[str, str], query: dict[str, str], api_key: str) -> _Reply | None:
    """None when the key is right; else the real API's answer for a missing or wrong key."""
    key = headers.get("x-goog-api-key")
    if key is None and headers.get("authorization", "").lower().startswith("bearer "):
        key = headers["authorization"][7:].strip()
    if key is None:
        key = query.get("key")
    if not key:
        return _rpc_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    if not secrets.compare_digest(key.encode(), api_key.encode()):
        message = "API key not valid. Please pass a valid API key."
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        localized = {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": message,
        }
        return _rpc_error(400, "INVALID_ARGUMENT", message, [info, localized])
    return None


# --------------------------------------------------------------------------- Gemini: requests

_TOP_FIELDS = frozenset(
    {
        "contents",
        "generationConfig",
        "safetySettings",
        "systemInstruction",
        "tools",
        "toolConfig",
        "cachedContent",
    }
)
_CONTENT_FIELDS = frozenset({"role", "parts"})
_PART_DATA = ("text", "inlineData")
_PART_UNSUPPORTED = frozenset(
    {"fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"}
)
_PART_FIELDS = frozenset({*_PART_DATA, *_PART_UNSUPPORTED, "thought", "thoughtSignature"})
_BLOB_FIELDS = frozenset({"mimeType", "data"})
_GENERATION_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
    }
)
_IMAGE_CONFIG_FIELDS = frozenset({"aspectRatio", "imageSize", "personGeneration"})


@dataclass(frozen=True)
class _GeminiCall:
    model: str
    prompt: str
    images: tuple[bytes, ...]
    aspect: str
    image_size: str | None
    modalities: frozenset[str]

    @property
    def family(self) -> str:
        return _family(self.model)


def _camel(key: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)


def _snake(path: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), path)


def _fields(obj: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    """`obj`'s fields, camelCased; unknown or repeated names are a 400, as in proto-JSON."""
    if not isinstance(obj, dict):
        raise _invalid(f"Invalid value at '{_snake(where)}': expected an object", _snake(where))
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = _camel(key)
        at = f" at '{_snake(where)}'" if where else ""
        if name not in allowed:
            raise _invalid(
                f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.',
                _snake(where) or None,
            )
        if name in out:
            raise _invalid(f"Field '{_snake(name)}' is set twice{at}.", _snake(f"{where}.{name}"))
        out[name] = value
    return out


def _load_request(body: bytes) -> dict[str, Any]:
    if len(body) > _GEMINI_MAX_BODY:
        raise _invalid(f"Request payload size exceeds the limit: {_GEMINI_MAX_BODY} bytes.")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid(f"Invalid JSON payload received. {error}") from None
    return _fields(data, "", _TOP_FIELDS)


def _parse_gemini(model: str, body: bytes) -> _GeminiCall:
    """The checked request, or _ApiError with the 400 the real API would give."""
    return _check_gemini(model, _load_request(body))


def _check_gemini(model: str, top: dict[str, Any]) -> _GeminiCall:
    """The checked request from its (camelCased) top-level fields."""
    texts, images = _parse_contents(top.get("contents"))
    config = _fields(top.get("generationConfig", {}), "generationConfig", _GENERATION_FIELDS)
    modalities = _parse_modalities(config.get("responseModalities"))
    image_config = _fields(
        config.get("imageConfig", {}), "generationConfig.imageConfig", _IMAGE_CONFIG_FIELDS
    )
    family = _family(model)
    aspect = _parse_aspect(image_config.get("aspectRatio"), family, model, images)
    image_size = _parse_image_size(image_config.get("imageSize"), family, model)
    return _GeminiCall(model, " ".join(texts), tuple(images), aspect, image_size, modalities)


def _parse_contents(contents: Any) -> tuple[list[str], list[bytes]]:
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified", "contents")
    texts: list[str] = []
    images: list[bytes] = []
    for i, content in enumerate(contents):
        fields = _fields(content, f"contents[{i}]", _CONTENT_FIELDS)
        role = fields.get("role", "user")
        if role not in ("user", "model"):
            raise _invalid("Please use a valid role: user, model.", f"contents[{i}].role")
        parts = fields.get("parts")
        if not isinstance(parts, list) or not parts:
            raise _invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.",
                f"contents[{i}].parts",
            )
        for j, part in enumerate(parts):
            text, image = _parse_part(part, f"contents[{i}].parts[{j}]")
            if text is not None and role == "user":
                texts.append(text)
            if image is not None:
                images.append(image)
    return texts, images


def _parse_part(part: Any, where: str) -> tuple[str | None, bytes | None]:
    fields = _fields(part, where, _PART_FIELDS)
    present = [name for name in (*_PART_DATA, *sorted(_PART_UNSUPPORTED)) if name in fields]
    if not present:
        raise _invalid(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
            "initialized field",
            _snake(where),
        )
    if len(present) > 1:
        raise _invalid(
            f"Invalid value at '{_snake(where)}': oneof field 'data' is already set. Cannot set "
            f"'{_snake(present[1])}'",
            _snake(f"{where}.{present[1]}"),
        )
    if present[0] in _PART_UNSUPPORTED:
        raise _invalid(
            f"{_snake(present[0])} parts are not supported by the stand-in", _snake(where)
        )
    if "text" in fields:
        if not isinstance(fields["text"], str):
            raise _invalid(
                f"Invalid value at '{_snake(where)}.text' (TYPE_STRING)", f"{where}.text"
            )
        return fields["text"], None
    return None, _parse_blob(fields["inlineData"], f"{where}.inlineData")


def _parse_blob(blob: Any, where: str) -> bytes:
    fields = _fields(blob, where, _BLOB_FIELDS)
    mime, data = fields.get("mimeType"), fields.get("data")
    if not isinstance(mime, str) or not mime:
        raise _invalid(
            f"* GenerateContentRequest.{where}.mime_type: required field",
            _snake(f"{where}.mimeType"),
        )
    if mime not in _IMAGE_MIME:
        raise _invalid(f"Unsupported MIME type: {mime}", _snake(f"{where}.mimeType"))
    if not isinstance(data, str) or not data:
        raise _invalid(
            f"* GenerateContentRequest.{where}.data: required field", _snake(f"{where}.data")
        )
    raw = _b64decode(data)
    if raw is None:
        raise _invalid(
            f"Invalid value at '{_snake(where)}.data' (TYPE_BYTES), Base64 decoding failed for "
            f'"{data[:40]}"',
            _snake(f"{where}.data"),
        )
    if _check_image(raw) is None:
        raise _invalid(
            "Unable to process input image. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
            _snake(f"{where}.data"),
        )
    return raw


def _b64decode(data: str) -> bytes | None:
    """Standard or URL-safe base64 (proto-JSON accepts both); None if neither decodes."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        pass
    if re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", data) is None:
        return None
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def _parse_modalities(value: Any) -> frozenset[str]:
    where = "generation_config.response_modalities"
    if value is None or value == []:
        return frozenset({"TEXT", "IMAGE"})
    if not isinstance(value, list):
        raise _invalid(f"Invalid value at '{where}': expected a list", where)
    for i, item in enumerate(value):
        if not isinstance(item, str) or item.upper() not in ("TEXT", "IMAGE"):
            raise _invalid(
                f"Invalid value at '{where}[{i}]' (Modality), {json.dumps(item)}: this model "
                "supports TEXT and IMAGE",
                f"{where}[{i}]",
            )
    return frozenset(item.upper() for item in value)


def _parse_aspect(value: Any, family: str, model: str, images: list[bytes]) -> str:
    where = "generation_config.image_config.aspect_ratio"
    ratios = _ratios(family)
    if value is None:
        size = _check_image(images[0]) if images else None
        return _nearest_ratio(size, ratios) if size else "1:1"
    if not isinstance(value, str) or value not in ratios:
        raise _invalid(
            f"Invalid value at '{where}': aspect ratio {json.dumps(value)} is not supported by "
            f"models/{model}; supported: {', '.join(ratios)}",
            where,
        )
    return value


def _parse_image_size(value: Any, family: str, model: str) -> str | None:
    where = "generation_config.image_config.image_size"
    if value is None:
        return None if family == "2.5" else "1K"
    allowed = _IMAGE_SIZES[family]
    if not allowed:
        raise _invalid(
            f"Invalid value at '{where}': generationConfig.imageConfig.imageSize is not "
            f"supported by models/{model}",
            where,
        )
    if value not in allowed:
        raise _invalid(
            f"Invalid value at '{where}': generationConfig.imageConfig.imageSize "
            f"{json.dumps(value)} is not supported by models/{model}; supported: "
            f"{', '.join(allowed)}",
            where,
        )
    return str(value)


# --------------------------------------------------------------------------- Gemini: answers


def _gemini_image_part(data: bytes, snake: bool = False, **extra: Any) -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    if snake:
        return {"inline_data": {"mime_type": "image/png", "data": encoded}, **extra}
    return {"inlineData": {"mimeType": "image/png", "data": encoded}, **extra}


def _gemini_usage(
    call: _GeminiCall, image_tokens: Sequence[int], text: str = "", thoughts: int = 0
) -> dict[str, Any]:
    prompt_text = _text_tokens(call.prompt)
    prompt_images = _PROMPT_IMAGE_TOKENS * len(call.images)
    out_text, out_images = _text_tokens(text), sum(image_tokens)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_text + prompt_images,
        "candidatesTokenCount": out_text + out_images,
        "totalTokenCount": prompt_text + prompt_images + out_text + out_images + thoughts,
        "promptTokensDetails": _details(TEXT=prompt_text, IMAGE=prompt_images),
    }
    if out_text or out_images:
        usage["candidatesTokensDetails"] = _details(TEXT=out_text, IMAGE=out_images)
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _details(**counts: int) -> list[dict[str, Any]]:
    return [{"modality": m, "tokenCount": n} for m, n in counts.items() if n]


def _gemini_envelope(call: _GeminiCall, **fields: Any) -> _Reply:
    payload = {**fields, "modelVersion": call.model, "responseId": secrets.token_urlsafe(16)}
    return _json_reply(200, payload)


def _candidate(parts: list[dict[str, Any]], finish: str = "STOP") -> dict[str, Any]:
    return {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}


_CAPTIONS = {
    "white": "Here is the product on a clean, pure white background.",
    "scene": "Here is the product in a soft studio scene.",
    "detail": "Here is a close-up detail of the product.",
    "backdrop": "Here is the empty set, without the product.",
}


def _gemini_answer(call: _GeminiCall, fault: str) -> _Reply:
    """The 200 (or error) answer to a checked Gemini request, shaped by `fault`."""
    name, delay = _parse_fault(fault)
    if name in ("429", "429-retryinfo"):
        return _quota_error(call.model, delay if name == "429-retryinfo" else None)
    if name == "404":
        return _model_not_found(call.model)
    if name == "http":
        return _gemini_status_error(int(delay))
    if name in _GEMINI_FAULT_ERRORS:
        return _rpc_error(*_GEMINI_FAULT_ERRORS[name])
    if name == "malformed":
        return _Reply(200, b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeTy')
    if name in ("no-candidates", "blocked-prompt", "safety"):
        return _gemini_no_image(call, name)
    if name == "text-only" or "IMAGE" not in call.modalities:
        text = "I can't produce an image for this request right now."
        return _gemini_envelope(
            call,
            candidates=[_candidate([{"text": text}])],
            usageMetadata=_gemini_usage(call, [], text),
        )
    return _gemini_image_answer(call, name)


def _gemini_no_image(call: _GeminiCall, name: str) -> _Reply:
    usage = _gemini_usage(call, [])
    if name == "no-candidates":
        return _gemini_envelope(call, candidates=[], usageMetadata=usage)
    if name == "blocked-prompt":
        feedback = {"blockReason": "SAFETY"}
        return _gemini_envelope(call, promptFeedback=feedback, usageMetadata=usage)
    candidate = {
        "finishReason": "IMAGE_SAFETY",
        "finishMessage": "Unable to show the generated image: flagged by the safety filters.",
        "index": 0,
    }
    return _gemini_envelope(call, candidates=[candidate], usageMetadata=usage)


def _gemini_image_answer(call: _GeminiCall, name: str) -> _Reply:
    size = output_size(call.model, _answer_aspect(call, name), call.image_size)
    style = _style(call.prompt)
    image = _render(call.images[0] if call.images else None, size, style, drift=name == "drift")
    extra = {"thoughtSignature": _signature()} if call.family != "2.5" else {}
    parts = [_gemini_image_part(image, snake=name == "snake-case", **extra)]
    text = _CAPTIONS[style] if "TEXT" in call.modalities or name == "text-first" else ""
    if text:
        parts.insert(0 if name == "text-first" else 1, {"text": text})
    thoughts = 0
    if name == "thought-images":
        interim = _render(
            call.images[0] if call.images else None, (size[0] // 2, size[1] // 2), style
        )
        thinking = {"text": "**Composing the shot**\nCentring the product.", "thought": True}
        parts[:0] = [thinking, _gemini_image_part(interim, thought=True)]
        thoughts = 400
    tokens = [_OUTPUT_TOKENS[call.family][call.image_size]]
    usage = _gemini_usage(call, tokens, text, thoughts)
    return _gemini_envelope(call, candidates=[_candidate(parts)], usageMetadata=usage)


def _answer_aspect(call: _GeminiCall, name: str) -> str:
    """The requested ratio, or the wrong one for the "wrong-aspect" fault."""
    if name != "wrong-aspect":
        return call.aspect
    return "16:9" if call.aspect == "1:1" else "1:1"


def _signature() -> str:
    return base64.b64encode(secrets.token_bytes(24)).decode()


# --------------------------------------------------------------------------- Gemini: batch jobs

_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
_BATCH_OUTPUT_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput"
)
_BATCH_BODY_FIELDS = frozenset({"batch"})
_BATCH_FIELDS = frozenset({"displayName", "inputConfig", "priority", "model"})
_INPUT_CONFIG_FIELDS = frozenset({"requests", "fileName"})
_INLINED_REQUESTS_FIELDS = frozenset({"requests"})
_INLINED_REQUEST_FIELDS = frozenset({"request", "metadata"})
_INNER_TOP_FIELDS = _TOP_FIELDS | {"model"}

_PENDING = "BATCH_STATE_PENDING"
_RUNNING = "BATCH_STATE_RUNNING"
_SUCCEEDED = "BATCH_STATE_SUCCEEDED"
_FAILED = "BATCH_STATE_FAILED"
_CANCELLED = "BATCH_STATE_CANCELLED"
_EXPIRED = "BATCH_STATE_EXPIRED"
_TERMINAL = frozenset({_SUCCEEDED, _FAILED, _CANCELLED, _EXPIRED})
_FAULT_STATES = {"ok": _SUCCEEDED, "expired": _EXPIRED, "failed": _FAILED, "cancelled": _CANCELLED}
#: The Operation's google.rpc.Status for jobs that end badly (gRPC codes INTERNAL, CANCELLED).
_JOB_ERRORS: dict[str, tuple[int, str]] = {
    _FAILED: (13, "Batch job failed: an internal error occurred while processing the batch."),
    _CANCELLED: (1, "The batch was cancelled."),
}

#: google.rpc.Code numbers for the status names our error answers use.
_GRPC_CODES = {
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}


@dataclass(frozen=True)
class _BatchRequest:
    call: _GeminiCall
    metadata: dict[str, Any] | None  # echoed in the answer's entry


@dataclass
class _BatchJob:
    name: str  # "batches/<id>"
    model: str
    display_name: str
    created: float  # wall clock
    started: float  # monotonic
    seconds: float  # from creation to the end state
    fault: str  # one of BATCH_FAULTS
    entries: list[dict[str, Any]]  # the inlined responses, in request order
    cancelled: float | None = None  # wall clock of a cancel that took effect

    def state(self, now: float) -> str:
        """The state at monotonic time `now`."""
        if self.cancelled is not None:
            return _CANCELLED
        elapsed = now - self.started
        if elapsed >= self.seconds:
            return _FAULT_STATES[self.fault]
        return _PENDING if elapsed < self.seconds / 2 else _RUNNING

    @property
    def ended(self) -> float:
        return self.cancelled if self.cancelled is not None else self.created + self.seconds


def _either(obj: Any, camel: str, snake: str) -> Any:
    if not isinstance(obj, dict):
        return None
    return obj.get(camel) if camel in obj else obj.get(snake)


def _batch_size(payload: Any) -> int:
    """How many inner requests a batch create body holds (0 when it is not shaped like one)."""
    config = _either(_either(payload, "batch", "batch"), "inputConfig", "input_config")
    inner = _either(_either(config, "requests", "requests"), "requests", "requests")
    return len(inner) if isinstance(inner, list) else 0


def _nested(error: _ApiError, prefix: str) -> _ApiError:
    """An inner request's 400, its message and field paths put under `prefix`."""
    payload = json.loads(error.reply.body)
    inner = payload["error"]
    inner["message"] = f"{prefix}: {inner['message']}"
    for detail in inner.get("details", []):
        for violation in detail.get("fieldViolations", []):
            violation["field"] = f"{prefix}.{violation['field']}".rstrip(".")
    return _ApiError(_json_reply(error.reply.status, payload))


def _parse_batch(model: str, body: bytes) -> tuple[str, list[_BatchRequest]]:
    """(display name, checked inner requests), or _ApiError with a 400."""
    if len(body) > _GEMINI_MAX_BODY:
        raise _invalid(f"Request payload size exceeds the limit: {_GEMINI_MAX_BODY} bytes.")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid(f"Invalid JSON payload received. {error}") from None
    top = _fields(data, "", _BATCH_BODY_FIELDS)
    if "batch" not in top:
        raise _invalid("* BatchGenerateContentRequest.batch: batch is required", "batch")
    batch = _fields(top["batch"], "batch", _BATCH_FIELDS)
    display_name = batch.get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise _invalid(
            "* GenerateContentBatch.display_name: display_name is required", "batch.display_name"
        )
    named = batch.get("model")
    if named is not None and (not isinstance(named, str) or named.removeprefix("models/") != model):
        raise _invalid(f"batch.model {named!r} does not match models/{model}", "batch.model")
    if "inputConfig" not in batch:
        raise _invalid(
            "* GenerateContentBatch.input_config: input_config is required", "batch.input_config"
        )
    config = _fields(batch["inputConfig"], "batch.inputConfig", _INPUT_CONFIG_FIELDS)
    if "fileName" in config:
        raise _invalid(
            "the stand-in takes inline requests only (input_config.requests), not "
            "input_config.file_name",
            "batch.input_config.file_name",
        )
    holder = _fields(config.get("requests"), "batch.inputConfig.requests", _INLINED_REQUESTS_FIELDS)
    items = holder.get("requests")
    where = "batch.input_config.requests.requests"
    if not isinstance(items, list) or not items:
        raise _invalid(f"* GenerateContentBatch.{where}: requests must not be empty", where)
    return display_name, [
        _parse_inlined(model, item, f"{where}[{i}]") for i, item in enumerate(items)
    ]


def _parse_inlined(model: str, item: Any, where: str) -> _BatchRequest:
    fields = _fields(item, where, _INLINED_REQUEST_FIELDS)
    metadata = fields.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _invalid(
            f"Invalid value at '{where}.metadata' (type.googleapis.com/google.protobuf.Struct), "
            "expected an object",
            f"{where}.metadata",
        )
    if "request" not in fields:
        raise _invalid(f"* {where}.request: request is required", f"{where}.request")
    try:
        inner = _fields(fields["request"], "", _INNER_TOP_FIELDS)
        named = inner.pop("model", None)
        if named is not None and (
            not isinstance(named, str) or named.removeprefix("models/") != model
        ):
            raise _invalid(f"model {named!r} does not match the batch's models/{model}", "model")
        call = _check_gemini(model, inner)
    except _ApiError as error:
        raise _nested(error, f"{where}.request") from None
    return _BatchRequest(call, metadata)


def _rpc_status(error: dict[str, Any]) -> dict[str, Any]:
    """The google.rpc.Status of an HTTP error body: the gRPC code in place of the HTTP one."""
    status: dict[str, Any] = {
        "code": _GRPC_CODES.get(str(error.get("status", "")), 2),
        "message": error.get("message", ""),
    }
    if error.get("details"):
        status["details"] = error["details"]
    return status


def _batch_entry(call: _GeminiCall, fault: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """One InlinedResponse: what generateContent would answer, as a response or an error."""
    name, _ = _parse_fault(fault)
    entry: dict[str, Any] = {}
    if name == "timeout":
        message = "Deadline expired before operation could complete."
        entry["error"] = {"code": _GRPC_CODES["DEADLINE_EXCEEDED"], "message": message}
    elif name != "malformed":  # "malformed": neither a response nor an error
        reply = _gemini_answer(call, fault)
        payload = _try_json(reply.body)
        if reply.status == 200:
            entry["response"] = payload
        elif isinstance(payload, dict):
            entry["error"] = _rpc_status(payload["error"])
        else:  # a redirect has no Status: what a gateway's HTML becomes in a batch
            entry["error"] = {"code": _GRPC_CODES["UNKNOWN"], "message": f"HTTP {reply.status}"}
    if metadata is not None:
        entry["metadata"] = metadata
    return entry


def _timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with a Z, as proto-JSON writes a Timestamp."""
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _operation(job: _BatchJob, state: str) -> dict[str, Any]:
    """The long-running Operation for `job` in `state` (see the module docstring)."""
    done = state in _TERMINAL
    total = len(job.entries)
    counts: dict[str, int] = {"pendingRequestCount": total}
    if state == _SUCCEEDED:
        failed = sum(1 for entry in job.entries if "error" in entry)
        counts = {"successfulRequestCount": total - failed, "failedRequestCount": failed}
    elif done:
        counts = {}
    stats = {"requestCount": str(total)} | {k: str(v) for k, v in counts.items() if v}
    metadata: dict[str, Any] = {
        "@type": _BATCH_TYPE,
        "model": f"models/{job.model}",
        "displayName": job.display_name,
        "createTime": _timestamp(job.created),
        "updateTime": _timestamp(job.ended if done else job.created),
        "batchStats": stats,
        "state": state,
        "name": job.name,
    }
    if done:
        metadata["endTime"] = _timestamp(job.ended)
    operation: dict[str, Any] = {"name": job.name, "metadata": metadata}
    if done:
        operation["done"] = True
        if state == _SUCCEEDED:
            output = {"inlinedResponses": job.entries}
            operation["response"] = {"@type": _BATCH_OUTPUT_TYPE, "inlinedResponses": output}
        elif state in _JOB_ERRORS:
            code, message = _JOB_ERRORS[state]
            operation["error"] = {"code": code, "message": message}
    return operation


def _batch_not_found() -> _Reply:
    return _rpc_error(404, "NOT_FOUND", "Requested entity was not found.")


# --------------------------------------------------------------------------- OpenAI

_OPENAI_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_OPENAI_FIELDS = frozenset(
    {
        "image",
        "image[]",
        "prompt",
        "model",
        "size",
        "n",
        "quality",
        "output_format",
        "output_compression",
        "background",
        "input_fidelity",
        "mask",
        "user",
        "stream",
        "partial_images",
    }
)
_OPENAI_CHOICES: dict[str, tuple[str, ...]] = {
    "quality": ("low", "medium", "high", "auto"),
    "output_format": ("png", "jpeg", "webp"),
    "background": ("transparent", "opaque", "auto"),
    "input_fidelity": ("high", "low"),
    "stream": ("false",),
}


def _openai_error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> _Reply:
    error = {"message": message, "type": kind, "param": param, "code": code}
    return _json_reply(
        status, {"error": error}, headers=(("x-request-id", _request_id()), *headers)
    )


def _request_id() -> str:
    return "req_" + secrets.token_hex(16)


def _openai_bad(message: str, param: str | None, code: str = "invalid_value") -> _ApiError:
    return _ApiError(_openai_error(400, message, param=param, code=code))


def _openai_auth(headers: dict[str, str], api_key: str) -> _Reply | None:
    auth = headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        return _openai_error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="invalid_api_key",
        )
    if not secrets.compare_digest(auth[7:].strip().encode(), api_key.encode()):
        return _openai_error(
            401,
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    return None


def _openai_model_not_found(model: str) -> _Reply:
    return _openai_error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


@dataclass(frozen=True)
class _FormPart:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _parse_multipart(content_type: str, body: bytes) -> list[_FormPart]:
    """The parts of a multipart/form-data body; ValueError if it is not one."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ValueError("expected a multipart/form-data body with a boundary")
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    parts: list[_FormPart] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a multipart part has no header block")
        parts.append(_form_part(head, data))
    raise ValueError("the multipart body has no closing boundary")


def _form_part(head: bytes, data: bytes) -> _FormPart:
    headers = Message()
    for line in head.decode("utf-8").split("\r\n"):
        if line.strip():
            key, _, value = line.partition(":")
            headers[key.strip()] = value.strip()
    name = headers.get_param("name", header="content-disposition")
    if name is None or headers.get_content_disposition() != "form-data":
        raise ValueError("a multipart part has no form-data name")
    content_type = headers.get_content_type() if "content-type" in headers else None
    return _FormPart(collapse_rfc2231_value(name), headers.get_filename(), content_type, data)


@dataclass(frozen=True)
class _OpenAICall:
    model: str
    prompt: str
    images: tuple[bytes, ...]
    size: str  # "1024x1024", ... ("auto" resolved from the input)
    n: int
    quality: str
    output_format: str
    background: str


def _parse_openai(content_type: str, body: bytes, models: frozenset[str]) -> _OpenAICall:
    """The checked edits request, or _ApiError with OpenAI's 400/404."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise _openai_bad(
            f"Invalid Content-Type header ({content_type}), expected multipart/form-data.",
            None,
            "invalid_request",
        )
    try:
        parts = _parse_multipart(content_type, body)
    except (ValueError, UnicodeDecodeError) as error:
        raise _openai_bad(
            f"Could not parse multipart form: {error}", None, "invalid_request"
        ) from None
    fields: dict[str, str] = {}
    images: list[bytes] = []
    for part in parts:
        if part.name not in _OPENAI_FIELDS:
            raise _openai_bad(f"Unknown parameter: '{part.name}'.", part.name, "unknown_parameter")
        if part.name in ("image", "image[]"):
            images.append(_openai_image(part, len(images)))
        elif part.name != "mask":
            fields[part.name] = part.data.decode("utf-8")
    return _openai_call(fields, images, models)


def _openai_image(part: _FormPart, index: int) -> bytes:
    if part.content_type not in _IMAGE_MIME:
        raise _openai_bad(
            f"Invalid file 'image': unsupported mimetype ('{part.content_type}'). Supported file "
            "formats are 'image/jpeg', 'image/png', and 'image/webp'.",
            "image",
            "unsupported_file_mimetype",
        )
    if _check_image(part.data) is None:
        raise _openai_bad(
            f"Invalid image file or mode for image {index + 1}, please check your image file.",
            "image",
            "invalid_image_file",
        )
    return part.data


def _openai_call(
    fields: dict[str, str], images: list[bytes], models: frozenset[str]
) -> _OpenAICall:
    for name in ("model", "prompt"):
        if not fields.get(name):
            raise _openai_bad(
                f"Missing required parameter: '{name}'.", name, "missing_required_parameter"
            )
    if fields["model"] not in models:
        raise _ApiError(_openai_model_not_found(fields["model"]))
    if not images:
        raise _openai_bad(
            "Missing required parameter: 'image'.", "image", "missing_required_parameter"
        )
    if len(images) > 16:
        raise _openai_bad("Too many images: at most 16 are allowed.", "image")
    for name, allowed in _OPENAI_CHOICES.items():
        if name in fields and fields[name] not in allowed:
            raise _openai_bad(_invalid_choice(fields[name], allowed), name)
    size = _openai_size(fields.get("size", "auto"), images[0])
    n = _openai_int(fields, "n", 1, 10, default=1)
    _openai_int(fields, "output_compression", 0, 100, default=100)
    output_format = fields.get("output_format", "png")
    background = fields.get("background", "auto")
    if background == "transparent" and output_format == "jpeg":
        raise _openai_bad(
            "Transparent background requires output_format png or webp.", "background"
        )
    quality = fields.get("quality", "auto")
    return _OpenAICall(
        fields["model"],
        fields["prompt"],
        tuple(images),
        size,
        n,
        quality,
        output_format,
        background,
    )


def _invalid_choice(value: str, allowed: Sequence[str]) -> str:
    listed = ", ".join(f"'{v}'" for v in allowed)
    return f"Invalid value: '{value}'. Supported values are: {listed}."


def _openai_int(fields: dict[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = fields.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise _openai_bad(f"Invalid '{name}': expected an integer from {low} to {high}.", name)
    return int(raw)


def _openai_size(value: str, first_image: bytes) -> str:
    if value not in _OPENAI_SIZES:
        raise _openai_bad(_invalid_choice(value, _OPENAI_SIZES), "size")
    if value != "auto":
        return value
    width, height = _check_image(first_image) or (1, 1)
    if width > height * 1.2:
        return "1536x1024"
    return "1024x1536" if height > width * 1.2 else "1024x1024"


def _openai_answer(call: _OpenAICall, fault: str) -> _Reply:
    """The 200 (or error) answer to a checked edits request, shaped by `fault`."""
    name, delay = _parse_fault(fault)
    error = _openai_fault_error(call, name, delay)
    if error is not None:
        return error
    if name == "malformed":
        return _Reply(200, b'{"created": 1, "data": [{"b64_json": "iVBORw0')
    images: list[bytes] = []
    if name not in ("text-only", "no-candidates"):
        images = _openai_images(call, name)
    return _json_reply(
        200, _openai_payload(call, images), headers=(("x-request-id", _request_id()),)
    )


def _openai_fault_error(call: _OpenAICall, name: str, delay: float) -> _Reply | None:
    if name in ("429", "429-retryinfo"):
        headers: tuple[tuple[str, str], ...] = ()
        if name == "429-retryinfo":
            headers = (
                ("retry-after", str(max(1, math.ceil(delay)))),
                ("retry-after-ms", str(round(delay * 1000))),
            )
        message = (
            f"Rate limit reached for {call.model} in organization org-standin on images per "
            "minute (IPM): Limit 5, Used 5, Requested 1. Please try again later."
        )
        return _openai_error(429, message, "requests", None, "rate_limit_exceeded", headers)
    simple = {
        "500": (500, "The server had an error while processing your request. Sorry about that!"),
        "503": (503, "The engine is currently overloaded, please try again later."),
        "504": (504, "The server timed out while processing your request."),
    }
    if name in simple:
        status, message = simple[name]
        return _openai_error(status, message, "server_error")
    if name == "400":
        return _openai_error(
            400, "Invalid value for 'prompt'.", param="prompt", code="invalid_value"
        )
    if name == "403":
        return _openai_auth({"authorization": "Bearer revoked"}, "")  # the wrong-key 401
    if name == "404":
        return _openai_model_not_found(call.model)
    if name == "http":
        return _openai_status_error(int(delay))
    if name in ("safety", "blocked-prompt"):
        message = (
            "Your request was rejected by the safety system. If you believe this is an error, "
            "contact us at help.openai.com and include the request ID."
        )
        return _openai_error(
            400, message, "image_generation_user_error", None, "moderation_blocked"
        )
    return None


def _openai_status_error(status: int) -> _Reply:
    if status < 400:
        return _redirect(status)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return _openai_error(status, f"The stand-in answers HTTP {status}.", kind)


def _openai_images(call: _OpenAICall, name: str) -> list[bytes]:
    size = call.size
    if name == "wrong-aspect":
        size = "1536x1024" if size == "1024x1024" else "1024x1024"
    width, height = (int(v) for v in size.split("x"))
    fmt = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[call.output_format]
    drift = name == "drift"
    return [_render(call.images[0], (width, height), _style(call.prompt), fmt, drift)] * call.n


def _openai_payload(call: _OpenAICall, images: list[bytes]) -> dict[str, Any]:
    quality = "medium" if call.quality == "auto" else call.quality
    image_tokens = _OPENAI_IMAGE_TOKENS * len(call.images)
    text_tokens = _text_tokens(call.prompt)
    output_tokens = _OPENAI_OUTPUT_TOKENS[quality][call.size] * len(images)
    return {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(image).decode()} for image in images],
        "background": "opaque" if call.background == "auto" else call.background,
        "output_format": call.output_format,
        "quality": quality,
        "size": call.size,
        "usage": {
            "input_tokens": image_tokens + text_tokens,
            "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
            "output_tokens": output_tokens,
            "total_tokens": image_tokens + text_tokens + output_tokens,
        },
    }


# --------------------------------------------------------------------------- HTTP plumbing


def _route(method: str, path: str) -> tuple[str | None, str]:
    """("gemini", model), ("gemini-batch", model), ("gemini-batch-get", "batches/<id>"),
    ("gemini-batch-cancel", "batches/<id>"), ("openai", "") or (None, "") for anything else."""
    batch = _BATCH_ROUTE.match(path)
    if method == "GET" and batch and not batch.group(2):
        return "gemini-batch-get", batch.group(1)
    if method != "POST":
        return None, ""
    if batch and batch.group(2):
        return "gemini-batch-cancel", batch.group(1)
    for route, pattern in (("gemini", _GEMINI_ROUTE), ("gemini-batch", _BATCH_CREATE_ROUTE)):
        match = pattern.match(path)
        if match:
            return route, unquote(match.group(1))
    return ("openai", "") if path == _OPENAI_ROUTE else (None, "")


def _not_found(method: str, path: str) -> _Reply:
    if path.startswith("/v1/"):
        return _openai_error(404, f"Invalid URL ({method} {path})")
    return _rpc_error(404, "NOT_FOUND", f"Method not found: {method} {path}")


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body (Content-Length or chunked); ValueError if it is malformed."""
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        return _read_chunked(handler.rfile)
    length = int(handler.headers.get("content-length") or 0)
    if length < 0:
        raise ValueError("negative Content-Length")
    return handler.rfile.read(length) if length else b""


def _read_chunked(stream: io.BufferedIOBase) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"x", 16)
        if size == 0:
            while stream.readline().strip():
                pass  # trailers
            return b"".join(chunks)
        chunks.append(stream.read(size))
        stream.readline()


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 120  # idle keep-alive connections give up after this
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def do_POST(self) -> None:
        self.server.standin._serve(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def send_reply(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # StandinServer._serve logs each answer with its fault

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("%s %s", self.address_string(), format % args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, standin: StandinServer, port: int) -> None:
        self.standin = standin
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's slow getfqdn()
        self.server_name, self.server_port = HOST, self.server_address[1]

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self.connections.add(connection)
            else:
                self.connections.discard(connection)

    def drop_connections(self) -> None:
        with self._connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------- the server


class StandinServer:
    """The Gemini + OpenAI image API stand-in on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str = "test-key-123",
        latency: float = 0.0,
        models: Iterable[str] = DEFAULT_MODELS,
        seed: int = 0,
        hang_seconds: float = 30.0,
        port: int = 0,
        batch_seconds: float = 0.5,
        keep_requests: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.models = tuple(models)
        self.seed = seed
        self.hang_seconds = hang_seconds
        self.port = port
        #: How long a batch job takes from creation to its end state (read at creation).
        self.batch_seconds = batch_seconds
        self.url = ""
        #: Every request received, oldest first; only the last `keep_requests` when that is set
        #: (a long benchmark would otherwise hold every request body it was sent).
        self.requests: list[RecordedRequest] = []
        self.keep_requests = keep_requests
        self._calls = 0  # counted as they come, so `calls` holds with a bound on `requests`
        self._script: collections.deque[str] = collections.deque()
        self._rates: dict[str, float] = {}
        self._rng = random.Random(seed)
        self._jobs: dict[str, _BatchJob] = {}
        self._batch_script: collections.deque[str] = collections.deque()
        self._batch_fault = "ok"
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on 127.0.0.1 (a free port unless `port` was given); sets `url`."""
        if self._server is not None:
            return
        self._stopping.clear()
        server = _HTTPServer(self, self.port)
        self._server = server
        self.url = f"http://{HOST}:{server.server_port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
            name=f"standin-{server.server_port}",
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; hung and pending answers are abandoned (their connections closed)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- scripting

    def script(self, *faults: str) -> None:
        """Queue faults for the next generate requests, one each ("ok" = a normal answer)."""
        for fault in faults:
            _parse_fault(fault)
        with self._lock:
            self._script.extend(faults)

    def set_fault_rates(self, rates: dict[str, float]) -> None:
        """Random faults with these probabilities once the script is empty; reseeds the RNG."""
        for fault, rate in rates.items():
            _parse_fault(fault)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate of {fault!r} must be within [0, 1], not {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to more than 1: {rates}")
        with self._lock:
            self._rates = dict(rates)
            self._rng = random.Random(self.seed)

    def set_batch_fault(self, fault: str | None) -> None:
        """How batch jobs created from now on end, unless `script_batch` says otherwise:
        "expired", "failed", "cancelled", or None (or "ok") for BATCH_STATE_SUCCEEDED."""
        fault = fault or "ok"
        if fault not in BATCH_FAULTS:
            raise ValueError(f"unknown batch fault {fault!r}; known: {sorted(BATCH_FAULTS)}")
        with self._lock:
            self._batch_fault = fault

    def script_batch(self, *faults: str) -> None:
        """Queue job faults for the next batch jobs created, one each ("ok" = succeeds)."""
        for fault in faults:
            if fault not in BATCH_FAULTS:
                raise ValueError(f"unknown batch fault {fault!r}; known: {sorted(BATCH_FAULTS)}")
        with self._lock:
            self._batch_script.extend(faults)

    @property
    def calls(self) -> int:
        """Generate requests received (Gemini and OpenAI), whatever their outcome; each inner
        request of a batch create counts as one (polls and cancels do not count)."""
        with self._lock:
            return self._calls

    def reset(self) -> None:
        """Forget the script, the fault rates, the recorded requests, the batch jobs and the
        batch faults; reseed the RNG."""
        with self._lock:
            self._script.clear()
            self._rates = {}
            self._rng = random.Random(self.seed)
            self.requests.clear()
            self._calls = 0
            self._jobs.clear()
            self._batch_script.clear()
            self._batch_fault = "ok"

    def _next_fault(self) -> str:
        """The script's next fault, else a random one, else "ok" (call with `_lock` held)."""
        if self._script:
            return self._script.popleft()
        if not self._rates:
            return "ok"
        draw, total = self._rng.random(), 0.0
        for fault, rate in self._rates.items():
            total += rate
            if draw < total:
                return fault
        return "ok"

    # -- serving

    def _serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        try:
            body = _read_body(handler)
        except ValueError:
            handler.close_connection = True
            handler.send_reply(_rpc_error(400, "INVALID_ARGUMENT", "Malformed request body."))
            return
        route, target = _route(handler.command, url.path)
        record = RecordedRequest(
            method=handler.command,
            path=url.path,
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=body,
            json=_try_json(body) if route in ("gemini", "gemini-batch") else None,
            fault=None,
            time=time.time(),
            query={k: v[-1] for k, v in parse_qs(url.query).items()},
            route=route,
        )
        with self._lock:  # faults are handed out in the order requests are recorded
            if route in _GENERATE_ROUTES:
                record.fault = self._next_fault()
                self._calls += 1
            elif route == "gemini-batch":
                size = _batch_size(record.json)
                record.batch_faults = [self._next_fault() for _ in range(size)]
                self._calls += size
            self._record(record)
        reply = (
            self._answer(handler, record, target) if self._pause(handler, self.latency) else None
        )
        if reply is None:
            handler.close_connection = True  # client gone or server stopping: no answer
            return
        record.status = reply.status
        _LOG.debug("%s %s -> %s (fault %s)", record.method, record.path, reply.status, record.fault)
        with contextlib.suppress(OSError):
            handler.send_reply(reply)

    def _record(self, record: RecordedRequest) -> None:
        """Append to `requests`, dropping the oldest beyond `keep_requests` (call with `_lock`
        held)."""
        self.requests.append(record)
        if self.keep_requests is not None and len(self.requests) > self.keep_requests:
            del self.requests[: len(self.requests) - self.keep_requests]

    def _answer(self, handler: _Handler, record: RecordedRequest, target: str) -> _Reply | None:
        """The reply; `target` is the model (Gemini routes) or the job name (batch routes)."""
        try:
            if record.route == "gemini":
                return self._answer_gemini(handler, record, target)
            if record.route == "gemini-batch":
                return self._answer_batch_create(record, target)
            if record.route in ("gemini-batch-get", "gemini-batch-cancel"):
                return self._answer_batch(record, target)
            if record.route == "openai":
                return self._answer_openai(handler, record)
            return _not_found(record.method, record.path)
        except _ApiError as error:
            return error.reply
        except Exception:  # a stand-in bug must not hang the client
            _LOG.exception("stand-in failed on %s %s", record.method, record.path)
            return _rpc_error(500, "INTERNAL", "The stand-in server failed; see its log.")

    def _answer_gemini(
        self, handler: _Handler, record: RecordedRequest, model: str
    ) -> _Reply | None:
        denied = _gemini_auth(record.headers, record.query, self.api_key)
        if denied is not None:
            return denied
        if not model.startswith("gemini-") or model not in self.models:
            return _model_not_found(model)
        call = _parse_gemini(model, record.body)
        fault = record.fault or "ok"
        if fault == "timeout":
            if not self._pause(handler, self.hang_seconds):
                return None
            fault = "ok"
        return _gemini_answer(call, fault)

    def _answer_batch_create(self, record: RecordedRequest, model: str) -> _Reply:
        denied = _gemini_auth(record.headers, record.query, self.api_key)
        if denied is not None:
            return denied
        if not model.startswith("gemini-") or model not in self.models:
            return _model_not_found(model, "batchGenerateContent")
        display_name, requests = _parse_batch(model, record.body)
        faults = record.batch_faults
        entries = [
            _batch_entry(request.call, faults[i] if i < len(faults) else "ok", request.metadata)
            for i, request in enumerate(requests)
        ]
        with self._lock:
            fault = self._batch_script.popleft() if self._batch_script else self._batch_fault
            job = _BatchJob(
                name=f"batches/{secrets.token_hex(16)}",
                model=model,
                display_name=display_name,
                created=time.time(),
                started=time.monotonic(),
                seconds=self.batch_seconds,
                fault=fault,
                entries=entries,
            )
            self._jobs[job.name] = job
        return _json_reply(200, _operation(job, _PENDING))

    def _answer_batch(self, record: RecordedRequest, name: str) -> _Reply:
        denied = _gemini_auth(record.headers, record.query, self.api_key)
        if denied is not None:
            return denied
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                return _batch_not_found()
            state = job.state(time.monotonic())
            if record.route == "gemini-batch-cancel":
                if state not in _TERMINAL:
                    job.cancelled = time.time()
                return _json_reply(200, {})
        return _json_reply(200, _operation(job, state))  # entries never change: no lock needed

    def _answer_openai(self, handler: _Handler, record: RecordedRequest) -> _Reply | None:
        denied = _openai_auth(record.headers, self.api_key)
        if denied is not None:
            return denied
        models = frozenset(m for m in self.models if not m.startswith("gemini-"))
        call = _parse_openai(record.headers.get("content-type", ""), record.body, models)
        fault = record.fault or "ok"
        if fault == "timeout":
            if not self._pause(handler, self.hang_seconds):
                return None
            fault = "ok"
        return _openai_answer(call, fault)

    def _pause(self, handler: _Handler, seconds: float) -> bool:
        """Wait `seconds`; False as soon as the client disconnects or the server stops."""
        deadline = time.monotonic() + seconds
        poller = select.poll()
        poller.register(handler.connection, select.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            if self._stopping.is_set():
                return False
            if not poller.poll(min(50.0, left * 1000)):
                continue
            if _peer_closed(handler.connection):
                return False
            # Pipelined bytes, not a hang-up: do not spin on them.
            self._stopping.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return not self._stopping.is_set()


def _try_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------- CLI

#: Recorded requests the command-line server keeps (nobody reads them there but a debugger).
CLI_KEEP_REQUESTS = 100
#: Megabytes of encoded answers the command-line server keeps (enough for the answers in flight
#: and a product's retries; a benchmark's photos are all distinct).
CLI_CACHE_MB = 32


def _fault_rate(text: str) -> tuple[str, float]:
    fault, _, rate = text.partition("=")
    try:
        _parse_fault(fault)
        return fault, float(rate)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use FAULT=RATE, e.g. 429=0.2 ({error})"
        ) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, 0 or more")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m product_images.testing.standin",
        description="Serve the Gemini + OpenAI image API stand-in on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--api-key", default="test-key-123")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument(
        "--batch-seconds", type=float, default=0.5, help="how long a batch job takes"
    )
    parser.add_argument(
        "--fault-rate",
        type=_fault_rate,
        action="append",
        default=[],
        metavar="FAULT=RATE",
        help="random fault probability, e.g. 429=0.2 (repeatable)",
    )
    parser.add_argument(
        "--keep-requests",
        type=_count,
        default=CLI_KEEP_REQUESTS,
        metavar="N",
        help=f"recorded requests kept, the last N (default {CLI_KEEP_REQUESTS}): a long "
        "benchmark would otherwise hold every request body",
    )
    parser.add_argument(
        "--cache-mb",
        type=_count,
        default=CLI_CACHE_MB,
        metavar="MB",
        help=f"encoded answers kept for repeated requests, in MB (default {CLI_CACHE_MB})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in in the foreground; Ctrl-C stops it."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    server = StandinServer(
        api_key=args.api_key,
        latency=args.latency,
        seed=args.seed,
        hang_seconds=args.hang_seconds,
        port=args.port,
        batch_seconds=args.batch_seconds,
        keep_requests=args.keep_requests,
    )
    server.set_fault_rates(dict(args.fault_rate))
    set_image_cache_limit(args.cache_mb * 1024 * 1024)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it cleanly too
    server.start()
    print(
        f"stand-in listening on {server.url} (api key {server.api_key!r}); Ctrl-C stops", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
