"""Backends make masters. `backend_for` is the one place that picks them from settings."""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

from product_images.backends.base import MasterBackend, MasterContext, ProductCutout
from product_images.backends.local import LocalBackend
from product_images.settings import Settings

if TYPE_CHECKING:
    from product_images.backends.generative import GenerativeBackend


def __getattr__(name: str) -> Any:
    # The generative stack (httpx, ledger, fidelity) loads only when a run needs it.
    if name == "GenerativeBackend":
        from product_images.backends.generative import GenerativeBackend

        return GenerativeBackend
    raise AttributeError(name)


__all__ = [
    "GenerativeBackend",
    "LocalBackend",
    "MasterBackend",
    "MasterContext",
    "ProductCutout",
    "configured_model",
    "generative_backend",
    "route",
]

_GENERATORS: dict[tuple[object, ...], GenerativeBackend] = {}
_LOCK = threading.Lock()


def _chosen(settings: Settings, override: str | None) -> str:
    choice = override or settings.generation.backend
    if choice != "auto":
        return choice
    if settings.generation.gemini_api_key is not None:
        return "gemini"
    return "openai" if settings.generation.openai_api_key is not None else "local"


def generative_backend(settings: Settings, override: str | None = None) -> GenerativeBackend | None:
    """The configured generative backend (one client per process and configuration), or None."""
    name = _chosen(settings, override)
    if name == "local":
        return None
    from product_images.backends.generative import GenerativeBackend
    from product_images.generative.clients import checked_choice, make_generator

    choice = checked_choice(settings, name)  # a shut-down model fails here, before any call
    key = (
        name,
        # The catalogue decides size, prices and warnings: an edited file is a new client.
        choice.catalogue_version,
        choice.image_size,
        settings.generation.gemini_model,
        settings.generation.gemini_base_url,
        settings.generation.openai_model,
        settings.generation.openai_base_url,
        _fingerprint(settings),
        # Clients carry their breaker thresholds and rate limits.
        settings.limits.breaker_failures,
        settings.limits.breaker_failure_rate,
        settings.limits.breaker_window,
        settings.limits.breaker_cooldown,
        settings.limits.adaptive_rate,
        settings.limits.gemini_rpm,
        settings.limits.gemini_concurrency,
        settings.limits.openai_rpm,
        settings.limits.openai_concurrency,
    )
    with _LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = GenerativeBackend(make_generator(settings, name, choice), choice)
        return _GENERATORS[key]


def configured_model(settings: Settings, override: str | None = None) -> str | None:
    """The generative model id that would be used, or None for the local backend only."""
    name = _chosen(settings, override)
    return {
        "gemini": settings.generation.gemini_model,
        "openai": settings.generation.openai_model,
    }.get(name)


def _fingerprint(settings: Settings) -> str:
    """Distinguishes keys without keeping them in a readable form."""
    secrets = [
        s.get_secret_value()
        for s in (settings.generation.gemini_api_key, settings.generation.openai_api_key)
        if s
    ]
    return hashlib.sha256("|".join(secrets).encode()).hexdigest()[:12]


def route(
    variant: str, cutout_confidence: float, generative: GenerativeBackend | None, settings: Settings
) -> MasterBackend:
    """White comes from the free local backend when its cut-out is confident enough; scene and
    detail use the generative backend whenever one is configured."""
    if generative is None:
        return LocalBackend()
    if variant == "white" and cutout_confidence >= settings.generation.white_from_local_above:
        return LocalBackend()
    return generative
