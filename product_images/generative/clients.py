"""The one place that builds a generative client from Settings."""

from __future__ import annotations

from product_images.errors import SettingsError
from product_images.generative.base import ImageGenerator
from product_images.generative.gemini import GeminiClient
from product_images.generative.openai_images import OpenAIImagesClient
from product_images.settings import Settings

__all__ = ["make_generator"]


def make_generator(settings: Settings, backend: str) -> ImageGenerator:
    """A client for `backend` ("gemini" or "openai") configured from `settings`.

    Raises SettingsError when the backend is unknown or its API key is not set.
    """
    if backend == "gemini":
        key = settings.gemini_api_key
        if key is None or not key.get_secret_value().strip():
            raise SettingsError(
                "the gemini backend needs an API key: set GEMINI_API_KEY "
                "(or PRODUCT_IMAGES_GEMINI_API_KEY)"
            )
        return GeminiClient(
            key,
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            auth=settings.gemini_auth,
            image_size=settings.gemini_image_size,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.request_timeout,
            proxy=settings.http_proxy,
            max_attempts=settings.max_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
        )
    if backend == "openai":
        key = settings.openai_api_key
        if key is None or not key.get_secret_value().strip():
            raise SettingsError(
                "the openai backend needs an API key: set OPENAI_API_KEY "
                "(or PRODUCT_IMAGES_OPENAI_API_KEY)"
            )
        return OpenAIImagesClient(
            key,
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.request_timeout,
            proxy=settings.http_proxy,
            max_attempts=settings.max_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
        )
    raise SettingsError(f"no generative client for backend {backend!r}: use 'gemini' or 'openai'")
