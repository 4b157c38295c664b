"""Generative image models as data: the catalogue files and their validation (no settings)."""

from product_images.model_catalogue.catalog import (
    BUILTIN_CATALOGUE_DIR,
    PROVIDERS,
    ModelCatalog,
    ModelEntry,
    ModelPrice,
    SizeFacts,
    load_catalog,
    parse_catalog,
)
from product_images.model_catalogue.choice import ModelChoice, choose_model

__all__ = [
    "BUILTIN_CATALOGUE_DIR",
    "PROVIDERS",
    "ModelCatalog",
    "ModelChoice",
    "ModelEntry",
    "ModelPrice",
    "SizeFacts",
    "choose_model",
    "load_catalog",
    "parse_catalog",
]
