"""The one place that builds a generative client from Settings."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from product_images.errors import SettingsError
from product_images.generative.base import ImageGenerator
from product_images.generative.batch import GeminiBatchClient
from product_images.generative.gemini import GeminiClient
from product_images.generative.openai_images import OpenAIImagesClient
from product_images.settings import Settings

__all__ = ["make_batch_client", "make_generator"]


def _key(secret: SecretStr | None, backend: str, env: str) -> SecretStr:
    if secret is None or not secret.get_secret_value().strip():
        raise SettingsError(
            f"the {backend} backend needs an API key: set {env} (or PRODUCT_IMAGES_{env})"
        )
    return secret


def _transport_options(settings: Settings) -> dict[str, Any]:
    """Timeouts, proxy and retry policy: the same for every client."""
    return {
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.request_timeout,
        "proxy": settings.http_proxy,
        "max_attempts": settings.max_attempts,
        "base_delay": settings.retry_base_delay,
        "max_delay": settings.retry_max_delay,
    }


def make_generator(settings: Settings, backend: str) -> ImageGenerator:
    """A client for `backend` ("gemini" or "openai") configured from `settings`.

    Raises SettingsError when the backend is unknown or its API key is not set.
    """
    if backend == "gemini":
        return GeminiClient(
            _key(settings.gemini_api_key, backend, "GEMINI_API_KEY"),
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            auth=settings.gemini_auth,
            image_size=settings.gemini_image_size,
            **_transport_options(settings),
        )
    if backend == "openai":
        return OpenAIImagesClient(
            _key(settings.openai_api_key, backend, "OPENAI_API_KEY"),
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            **_transport_options(settings),
        )
    raise SettingsError(f"no generative client for backend {backend!r}: use 'gemini' or 'openai'")


def make_batch_client(settings: Settings) -> GeminiBatchClient:
    """A Gemini client that can also run Batch API jobs (refreshes at half price)."""
    return GeminiBatchClient(
        _key(settings.gemini_api_key, "gemini", "GEMINI_API_KEY"),
        model=settings.gemini_model,
        base_url=settings.gemini_base_url,
        auth=settings.gemini_auth,
        image_size=settings.gemini_image_size,
        poll_initial=settings.batch_poll_initial,
        poll_max=settings.batch_poll_max,
        timeout=settings.batch_timeout,
        **_transport_options(settings),
    )
