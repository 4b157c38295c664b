"""The model catalogue as the settings configure it: the chosen model, prices, Batch discount.

Everything a generative call needs to know about its model comes from here, read from the
catalogue files (built-in or PRODUCT_IMAGES_MODEL_CATALOGUE_DIR), with PRODUCT_IMAGES_PRICES and
PRODUCT_IMAGES_BATCH_DISCOUNT as explicit overrides.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from product_images.model_catalogue import (
    PROVIDERS,
    ModelChoice,
    ModelPrice,
    choose_model,
    load_catalog,
)
from product_images.settings import Settings

__all__ = ["batch_discount", "model_choice", "price_table", "today"]

_SETTING = {"gemini": "GEMINI_MODEL", "openai": "OPENAI_MODEL"}


def today() -> date:
    """The UTC date model statuses are judged on."""
    return datetime.now(UTC).date()


def model_choice(
    settings: Settings, provider: str, model: str | None = None, on: date | None = None
) -> ModelChoice:
    """The configured (or given) model of `provider` resolved against its catalogue.

    Raises ModelRetiredError for a shut-down id.
    """
    configured = {
        "gemini": settings.generation.gemini_model,
        "openai": settings.generation.openai_model,
    }[provider]
    return choose_model(
        load_catalog(provider, settings.generation.model_catalogue_dir),
        model or configured,
        settings.generation.gemini_image_size if provider == "gemini" else None,
        on or today(),
        _SETTING[provider],
    )


def price_table(settings: Settings, choice: ModelChoice | None = None) -> dict[str, ModelPrice]:
    """Prices of every catalogued model by id and alias (`choice`'s at its billed size),
    PRODUCT_IMAGES_PRICES on top."""
    table: dict[str, ModelPrice] = {}
    for provider in PROVIDERS:
        for entry in load_catalog(provider, settings.generation.model_catalogue_dir).models:
            table.update(dict.fromkeys(entry.names(), entry.price()))
    if choice is not None and choice.price is not None:
        table[choice.model] = choice.price
    return {**table, **settings.generation.prices}


def batch_discount(settings: Settings, choice: ModelChoice) -> float | None:
    """Batch price share: the setting when set, else the model's; None = no Batch API."""
    return (
        settings.generation.batch_discount
        if settings.generation.batch_discount is not None
        else choice.batch_discount
    )
