"""Backends make masters: `chosen_backend` names the one the settings (or a product) pick;
the run's wiring (`product_images.wiring`) makes it."""

from __future__ import annotations

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
    "chosen_backend",
    "configured_model",
    "route",
]


def chosen_backend(settings: Settings, override: str | None = None) -> str:
    """'gemini', 'openai' or 'local': a product's `override`, else the setting; 'auto' picks
    the backend whose key is set."""
    generation = settings.generation
    choice = override or generation.backend
    if choice != "auto":
        return choice
    if generation.gemini_api_key is not None:
        return "gemini"
    return "openai" if generation.openai_api_key is not None else "local"


def configured_model(settings: Settings, override: str | None = None) -> str | None:
    """The generative model id that would be used, or None for the local backend only."""
    name = chosen_backend(settings, override)
    return {
        "gemini": settings.generation.gemini_model,
        "openai": settings.generation.openai_model,
    }.get(name)


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
