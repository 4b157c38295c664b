"""Gemini image models ("Nano Banana") through the REST generateContent endpoint, with httpx.

    POST {base_url}/v1beta/models/{model}:generateContent

Works against Google's Gemini Developer API (key in `x-goog-api-key`) and against relays that
expose the same Gemini-native path (key as `Authorization: Bearer`). Failures become the
typed errors of product_images.errors through the shared mapping (http_errors.py, with
Gemini's specifics in gemini_errors.py); 429 / 5xx / timeouts / answers without an image are
retried with backoff (honouring google.rpc.RetryInfo). The API key never appears in a
message, a repr or a log line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from product_images.errors import ContentBlockedError, NoImageError, SettingsError
from product_images.generative.backoff import AttemptInfo, RandomSource
from product_images.generative.base import (
    AttemptHooks,
    GenerationRequest,
    GenerationResult,
    Usage,
)
from product_images.generative.gemini_errors import GEMINI
from product_images.generative.http import HttpImageGenerator, check_base_url, sniff_image_type
from product_images.generative.http_errors import error_from_response, error_message, json_object
from product_images.generative.redact import clean_api_key
from product_images.model_catalogue import load_catalog

__all__ = ["SAFETY_FINISH_REASONS", "GeminiClient", "build_request_body", "takes_image_size"]

#: finishReason values meaning the output was withheld for safety / policy reasons: the same
#: request will be refused again, so they are permanent (ContentBlockedError).
SAFETY_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)

#: For clients built without settings; the model catalogue decides it.
DEFAULT_MODEL = load_catalog("gemini").default
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"

_MAJOR_VERSION = re.compile(r"^(?:models/)?gemini-(\d+)(?:[.\-]|$)")


def takes_image_size(model: str) -> bool:
    """True for the Gemini 3 family (and later), the only models that take imageSize.

    gemini-2.5-flash-image answers 1K only and is never sent imageSize; ids that do not start
    with gemini-<N> (relay aliases) are not sent it either, which is the safe default.
    """
    match = _MAJOR_VERSION.match(model.strip().lower())
    return match is not None and int(match.group(1)) >= 3


def build_request_body(
    request: GenerationRequest,
    model: str,
    image_size: str | None = None,
    sends_image_size: bool | None = None,
) -> dict[str, Any]:
    """The generateContent JSON body for `request`.

    Casing follows Google's own REST examples for image editing: snake_case `inline_data` /
    `mime_type` inside parts and camelCase `generationConfig` / `responseModalities` /
    `imageConfig`. Google's proto-JSON parser accepts either spelling for every field, and
    relays are tested against the official examples, so copying them verbatim is the form
    most likely to survive a relay that rewrites bodies.

    responseModalities is ["TEXT", "IMAGE"], the documented default (upper-case enum names),
    rather than ["IMAGE"]: every Gemini image model accepts it (earlier image models rejected
    IMAGE alone), and when the model declines to draw, its text explains why, which goes into
    the NoImageError message. Text parts cost a handful of tokens.

    `sends_image_size` comes from the model catalogue; None (a model it does not know) falls
    back to guessing from the id.
    """
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    for image in request.images:
        parts.append(
            {
                "inline_data": {
                    "mime_type": image.mime_type,
                    "data": base64.b64encode(image.data).decode("ascii"),
                }
            }
        )
    image_config: dict[str, str] = {}
    if request.aspect_ratio:
        image_config["aspectRatio"] = request.aspect_ratio
    size = request.image_size or image_size
    sends = takes_image_size(model) if sends_image_size is None else sends_image_size
    if size and sends:
        image_config["imageSize"] = size
    generation_config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        generation_config["imageConfig"] = image_config
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": generation_config,
    }


@dataclass(frozen=True)
class _Answer:
    image: bytes
    mime_type: str
    text: str


def _field(mapping: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field under its camelCase (Google) or snake_case (some relays) name."""
    value = mapping.get(camel)
    return mapping.get(snake) if value is None else value


def _as_int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def parse_usage(payload: Mapping[str, Any]) -> Usage:
    """usageMetadata → Usage. Thinking tokens (Gemini 3 Pro) are billed as output, so they
    are counted with the candidates' tokens."""
    meta = _field(payload, "usageMetadata", "usage_metadata")
    if not isinstance(meta, Mapping):
        return Usage()
    prompt = _as_int(_field(meta, "promptTokenCount", "prompt_token_count"))
    output = _as_int(_field(meta, "candidatesTokenCount", "candidates_token_count")) + _as_int(
        _field(meta, "thoughtsTokenCount", "thoughts_token_count")
    )
    total = _as_int(_field(meta, "totalTokenCount", "total_token_count")) or prompt + output
    return Usage(prompt_tokens=prompt, output_tokens=output, total_tokens=total)


class GeminiClient(HttpImageGenerator):
    """An ImageGenerator on the Gemini generateContent REST API."""

    name = "gemini"
    provider = GEMINI
    fallback_model = DEFAULT_MODEL

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str = DEFAULT_BASE_URL,
        auth: Literal["header", "bearer"] = "header",
        image_size: str | None = "2K",
        sends_image_size: bool | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 180.0,
        proxy: str | None = None,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: RandomSource | None = None,
    ) -> None:
        key = clean_api_key(api_key, "GEMINI_API_KEY")
        if auth not in ("header", "bearer"):
            raise SettingsError(f"gemini_auth must be 'header' or 'bearer', got {auth!r}")
        model = model.strip().removeprefix("models/")
        if not model:
            raise SettingsError("GEMINI_MODEL is empty: set it to an image model id")
        self._setup(
            key,
            model=model,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            proxy=proxy,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
            transport=transport,
            sleep=sleep,
            rng=rng,
        )
        self.auth = auth
        self.image_size = image_size
        self.sends_image_size = sends_image_size
        base = check_base_url(base_url, "GEMINI_BASE_URL").removesuffix("/v1beta")
        self.base_url = base
        self.url = f"{base}/v1beta/models/{quote(model, safe='')}:generateContent"

    def __repr__(self) -> str:
        return f"GeminiClient(model={self.model!r}, base_url={self.base_url!r}, auth={self.auth!r})"

    # ------------------------------------------------------------------ generate

    def generate(
        self, request: GenerationRequest, hooks: AttemptHooks | None = None
    ) -> GenerationResult:
        """One image for `request`, retrying retryable failures; raises GenerationError."""
        payload = build_request_body(request, self.model, self.image_size, self.sends_image_size)
        body = json.dumps(payload).encode()
        answer, attempts = self._with_backoff(lambda info: self._attempt(body, info), hooks)
        usage, parsed = answer
        return GenerationResult(
            image=parsed.image,
            mime_type=parsed.mime_type,
            model=self.model,
            usage=usage,
            attempts=attempts,
            text=parsed.text,
        )

    def _headers(self) -> dict[str, str]:
        key = self._key.get_secret_value()
        headers = {"content-type": "application/json"}
        if self.auth == "bearer":
            headers["authorization"] = f"Bearer {key}"
        else:
            headers["x-goog-api-key"] = key
        return headers

    def _attempt(self, body: bytes, info: AttemptInfo) -> tuple[Usage, _Answer]:
        response = self._send(info, "POST", self.url, content=body, headers=self._headers())
        payload = json_object(response, self._caller())
        if isinstance(payload.get("error"), Mapping) and "candidates" not in payload:
            # Some relays wrap an upstream error in a 200.
            raise error_from_response(response, self._caller(), payload)
        info.usage = parse_usage(payload)
        return info.usage, self._parse_answer(payload)

    # ------------------------------------------------------------------ answers

    def _parse_answer(self, payload: Mapping[str, Any]) -> _Answer:
        feedback = _field(payload, "promptFeedback", "prompt_feedback")
        if isinstance(feedback, Mapping):
            block = _field(feedback, "blockReason", "block_reason")
            if block:
                detail = _field(feedback, "blockReasonMessage", "block_reason_message")
                raise ContentBlockedError(
                    self._scrub(
                        f"Gemini {self.model} blocked the prompt (blockReason={block}"
                        + (f": {error_message(str(detail), 200)}" if detail else "")
                        + "): retrying will not help; change the prompt template or the "
                        "source image"
                    ),
                    status=200,
                )
        candidates = payload.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            raise NoImageError(f"Gemini {self.model}: the answer had no candidates", status=200)
        candidate = candidates[0] if isinstance(candidates[0], Mapping) else {}
        finish = _field(candidate, "finishReason", "finish_reason")
        if isinstance(finish, str) and finish.upper() in SAFETY_FINISH_REASONS:
            detail = _field(candidate, "finishMessage", "finish_message")
            raise ContentBlockedError(
                self._scrub(
                    f"Gemini {self.model} withheld the image (finishReason={finish}"
                    + (f": {error_message(str(detail), 200)}" if detail else "")
                    + "): retrying will not help; change the prompt template or the source image"
                ),
                status=200,
            )
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, Mapping) else None
        texts: list[str] = []
        final: list[Mapping[str, Any]] = []
        thoughts: list[Mapping[str, Any]] = []
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, Mapping):
                continue
            thought = part.get("thought") is True
            inline = _field(part, "inlineData", "inline_data")
            if isinstance(inline, Mapping) and inline.get("data"):
                (thoughts if thought else final).append(inline)
            elif isinstance(part.get("text"), str) and not thought:
                texts.append(part["text"])
        text = "\n".join(t for t in texts if t.strip())
        # Interim "thought" images of thinking models are drafts: the last non-thought image
        # is the answer. Only when every image is marked thought, the last one is taken
        # ("the last image within Thinking is also the final rendered image").
        chosen = final[-1] if final else thoughts[-1] if thoughts else None
        if chosen is None:
            said = f"; model text: {error_message(text, 200)!r}" if text else ""
            raise NoImageError(
                self._scrub(
                    f"Gemini {self.model}: the answer had no image "
                    f"(finishReason={finish or 'none'}){said}"
                ),
                status=200,
            )
        try:
            image = base64.b64decode(str(chosen["data"]))
        except (binascii.Error, ValueError):
            image = b""
        if not image:
            raise NoImageError(
                f"Gemini {self.model}: the image part was not valid base64", status=200
            )
        declared = _field(chosen, "mimeType", "mime_type")
        mime = sniff_image_type(image) or (declared if isinstance(declared, str) else None)
        return _Answer(image=image, mime_type=mime or "image/png", text=text)
