"""An OpenAI-compatible images API (gpt-image-1 and relays) through POST /v1/images/edits.

multipart/form-data: model, prompt, n=1, size (from the aspect ratio) and the input images
(one as `image`, several as repeated `image[]`, as the OpenAI SDK sends them). GPT image
models always answer base64 (`data[0].b64_json`). Failures become the typed errors of
product_images.errors through the shared mapping (http_errors.py, with OpenAI's specifics in
openai_errors.py); 429 / 5xx / timeouts / answers without an image are retried with
backoff (honouring Retry-After). The API key never appears in a message, a repr or a log.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from product_images.errors import BadRequestError, NoImageError, SettingsError
from product_images.generative.backoff import AttemptInfo, RandomSource
from product_images.generative.base import (
    AttemptHooks,
    GenerationRequest,
    GenerationResult,
    Usage,
)
from product_images.generative.http import HttpImageGenerator, check_base_url, sniff_image_type
from product_images.generative.http_errors import json_object
from product_images.generative.openai_errors import OPENAI
from product_images.generative.redact import clean_api_key
from product_images.model_catalogue import load_catalog

__all__ = ["OpenAIImagesClient", "size_for_aspect_ratio"]

#: For clients built without settings; the model catalogue decides it.
DEFAULT_MODEL = load_catalog("openai").default
DEFAULT_BASE_URL = "https://api.openai.com"

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def size_for_aspect_ratio(aspect_ratio: str) -> str:
    """The gpt-image size closest to "W:H": 1024x1024, 1536x1024 (landscape) or 1024x1536."""
    try:
        width, height = (float(side) for side in aspect_ratio.split(":"))
    except ValueError:
        raise BadRequestError(
            f"aspect ratio {aspect_ratio!r} is not of the form W:H (e.g. 4:5)"
        ) from None
    if width <= 0 or height <= 0:
        raise BadRequestError(f"aspect ratio {aspect_ratio!r} must have positive sides")
    if width == height:
        return "1024x1024"
    return "1536x1024" if width > height else "1024x1536"


class OpenAIImagesClient(HttpImageGenerator):
    """An ImageGenerator on an OpenAI-compatible /v1/images/edits endpoint."""

    name = "openai"
    provider = OPENAI
    fallback_model = DEFAULT_MODEL

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str = DEFAULT_BASE_URL,
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
        key = clean_api_key(api_key, "OPENAI_API_KEY")
        model = model.strip()
        if not model:
            raise SettingsError("OPENAI_MODEL is empty: set it to an image model id")
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
        # The OpenAI SDK convention puts /v1 in the base URL; accept both spellings.
        base = check_base_url(base_url, "OPENAI_BASE_URL").removesuffix("/v1")
        self.base_url = base
        self.url = f"{base}/v1/images/edits"

    def __repr__(self) -> str:
        return f"OpenAIImagesClient(model={self.model!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------------ generate

    def generate(
        self, request: GenerationRequest, hooks: AttemptHooks | None = None
    ) -> GenerationResult:
        """One image for `request`, retrying retryable failures; raises GenerationError."""
        if not request.images:
            raise BadRequestError("/v1/images/edits needs at least one input image")
        data = {
            "model": self.model,
            "prompt": request.prompt,
            "n": "1",
            "size": size_for_aspect_ratio(request.aspect_ratio or "1:1"),
        }
        field = "image" if len(request.images) == 1 else "image[]"
        files = [
            (
                field,
                (
                    f"image{index}.{_EXTENSIONS.get(image.mime_type, 'png')}",
                    image.data,
                    image.mime_type,
                ),
            )
            for index, image in enumerate(request.images)
        ]
        (image, mime, usage), attempts = self._with_backoff(
            lambda info: self._attempt(data, files, info), hooks
        )
        return GenerationResult(
            image=image, mime_type=mime, model=self.model, usage=usage, attempts=attempts
        )

    def _attempt(
        self,
        data: dict[str, str],
        files: list[tuple[str, tuple[str, bytes, str]]],
        info: AttemptInfo,
    ) -> tuple[bytes, str, Usage]:
        headers = {"authorization": f"Bearer {self._key.get_secret_value()}"}
        response = self._send(info, "POST", self.url, data=data, files=files, headers=headers)
        payload = json_object(response, self._caller())
        info.usage = _parse_usage(payload.get("usage"))
        items = payload.get("data")
        item = items[0] if isinstance(items, list) and items else None
        encoded = item.get("b64_json") if isinstance(item, Mapping) else None
        if not encoded:
            has_url = isinstance(item, Mapping) and item.get("url")
            raise NoImageError(
                f"OpenAI {self.model}: the answer had no image"
                + (" (a URL instead of b64_json; not supported)" if has_url else ""),
                status=200,
            )
        try:
            image = base64.b64decode(str(encoded))
        except (binascii.Error, ValueError):
            image = b""
        if not image:
            raise NoImageError(f"OpenAI {self.model}: b64_json was not valid base64", status=200)
        output_format = payload.get("output_format")
        declared = f"image/{output_format}".replace("jpg", "jpeg") if output_format else None
        return image, sniff_image_type(image) or declared or "image/png", info.usage


def _parse_usage(usage: Any) -> Usage:
    if not isinstance(usage, Mapping):
        return Usage()

    def count(name: str) -> int:
        try:
            return max(int(usage.get(name) or 0), 0)
        except (TypeError, ValueError):
            return 0

    prompt, output = count("input_tokens"), count("output_tokens")
    return Usage(
        prompt_tokens=prompt,
        output_tokens=output,
        total_tokens=count("total_tokens") or prompt + output,
    )
