"""The one place that builds a generative client from Settings."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import SecretStr

from product_images.errors import SettingsError
from product_images.generative.base import ImageGenerator
from product_images.generative.batch_api import GeminiBatchClient
from product_images.generative.breaker import breaker_for
from product_images.generative.call_limiter import backend_limiter
from product_images.generative.configured_model import model_choice
from product_images.generative.gemini import GeminiClient
from product_images.generative.http import HttpImageGenerator
from product_images.generative.openai_images import OpenAIImagesClient
from product_images.generative.throttle import throttle_for
from product_images.model_catalogue import ModelChoice
from product_images.settings import Settings

__all__ = ["checked_choice", "make_batch_client", "make_generator"]

C = TypeVar("C", bound=HttpImageGenerator)
_LOG = logging.getLogger(__name__)


def _key(secret: SecretStr | None, backend: str, env: str) -> SecretStr:
    if secret is None or not secret.get_secret_value().strip():
        raise SettingsError(
            f"the {backend} backend needs an API key: set {env} (or PRODUCT_IMAGES_{env})"
        )
    return secret


def _transport_options(settings: Settings) -> dict[str, Any]:
    """Timeouts, proxy and retry policy: the same for every client."""
    return {
        "connect_timeout": settings.limits.connect_timeout,
        "read_timeout": settings.limits.request_timeout,
        "proxy": settings.generation.http_proxy,
        "max_attempts": settings.limits.max_attempts,
        "base_delay": settings.limits.retry_base_delay,
        "max_delay": settings.limits.retry_max_delay,
    }


def _guarded(client: C, settings: Settings, choice: ModelChoice, breaker: bool = True) -> C:
    """The client with its backend's rate limits, adaptive rate, (unless told not to) circuit
    breaker, and the current model ids its 404s suggest."""
    client.current_models = choice.current
    rpm, concurrency, base_url = {
        "gemini": (
            settings.limits.gemini_rpm,
            settings.limits.gemini_concurrency,
            settings.generation.gemini_base_url,
        ),
        "openai": (
            settings.limits.openai_rpm,
            settings.limits.openai_concurrency,
            settings.generation.openai_base_url,
        ),
    }[client.name]
    client.limiter = backend_limiter(client.name, rpm, concurrency)
    if settings.limits.adaptive_rate:
        client.throttle = throttle_for(client.name, base_url, client.model, rpm)
    if breaker:
        client.breaker = breaker_for(
            client.name,
            base_url,
            client.model,
            settings.limits.breaker_failures,
            settings.limits.breaker_cooldown,
            settings.limits.breaker_failure_rate,
            settings.limits.breaker_window,
        )
    return client


def checked_choice(settings: Settings, backend: str) -> ModelChoice:
    """The configured model of `backend` against its catalogue.

    Raises ModelRetiredError (a SettingsError) for a shut-down id, before any call.
    """
    if backend not in ("gemini", "openai"):
        raise SettingsError(
            f"no generative client for backend {backend!r}: use 'gemini' or 'openai'"
        )
    return model_choice(settings, backend)


def make_generator(
    settings: Settings, backend: str, choice: ModelChoice | None = None
) -> ImageGenerator:
    """A client for `backend` ("gemini" or "openai") configured from `settings` and the model
    catalogue, its calls rate-limited and behind the backend's circuit breaker.

    Raises SettingsError when the backend is unknown, its API key is not set or its model is
    shut down.
    """
    choice = choice or checked_choice(settings, backend)
    for warning in choice.warnings:  # once per client: clients are made once per process
        _LOG.warning("%s", warning)
    if backend == "gemini":
        gemini = GeminiClient(
            _key(settings.generation.gemini_api_key, backend, "GEMINI_API_KEY"),
            model=settings.generation.gemini_model,
            base_url=settings.generation.gemini_base_url,
            auth=settings.generation.gemini_auth,
            image_size=choice.image_size,
            sends_image_size=choice.sends_image_size,
            **_transport_options(settings),
        )
        return _guarded(gemini, settings, choice)
    openai = OpenAIImagesClient(
        _key(settings.generation.openai_api_key, backend, "OPENAI_API_KEY"),
        model=settings.generation.openai_model,
        base_url=settings.generation.openai_base_url,
        **_transport_options(settings),
    )
    return _guarded(openai, settings, choice)


def make_batch_client(settings: Settings) -> GeminiBatchClient:
    """A Gemini client that can also run Batch API jobs (refreshes at half price).

    Rate-limited like the synchronous client, but without the breaker: a failed batch is
    already handled (its requests go through normal calls, which the breaker guards), while
    an open breaker during polling would abandon jobs that were paid for.
    """
    choice = checked_choice(settings, "gemini")
    for warning in choice.warnings:
        _LOG.warning("%s", warning)
    return _guarded(_batch_client(settings, choice), settings, choice, breaker=False)


def _batch_client(settings: Settings, choice: ModelChoice) -> GeminiBatchClient:
    return GeminiBatchClient(
        _key(settings.generation.gemini_api_key, "gemini", "GEMINI_API_KEY"),
        model=settings.generation.gemini_model,
        base_url=settings.generation.gemini_base_url,
        auth=settings.generation.gemini_auth,
        image_size=choice.image_size,
        sends_image_size=choice.sends_image_size,
        poll_initial=settings.generation.batch_poll_initial,
        poll_max=settings.generation.batch_poll_max,
        timeout=settings.generation.batch_timeout,
        **_transport_options(settings),
    )
