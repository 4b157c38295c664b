"""`product-images generative-models`: the generative model catalogues (Gemini, OpenAI)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from product_images.errors import ModelCatalogError, ProductImagesError
from product_images.generative.configured_model import model_choice, today
from product_images.model_catalogue import (
    BUILTIN_CATALOGUE_DIR,
    PROVIDERS,
    ModelCatalog,
    load_catalog,
    parse_catalog,
)
from product_images.settings import Settings, get_settings

__all__ = ["generative_models"]


@click.group("generative-models")
def generative_models() -> None:
    """List and validate the generative model catalogues (PRODUCT_IMAGES_MODEL_CATALOGUE_DIR)."""


@generative_models.command("list")
def list_models() -> None:
    """Every catalogued model: status today, sizes with list prices, Batch; the configured one
    marked '*', with its warnings."""
    settings = get_settings()
    try:
        for provider in PROVIDERS:
            _show(load_catalog(provider, settings.generation.model_catalogue_dir), settings)
            for warning in model_choice(settings, provider).warnings:
                click.echo(f"   warning: {warning}")
    except ProductImagesError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


def _show(catalog: ModelCatalog, settings: Settings) -> None:
    configured = {
        "gemini": settings.generation.gemini_model,
        "openai": settings.generation.openai_model,
    }
    click.echo(f"{catalog.title} (default {catalog.default}; catalogue {catalog.version})")
    for entry in catalog.models:
        mark = "*" if configured[catalog.provider] in entry.names() else " "
        sizes = " ".join(f"{k}=${v.usd:g}" for k, v in entry.image_sizes.items())
        batch = f"batch x{entry.batch_discount:g}" if entry.batch_discount else "no batch"
        click.echo(f" {mark} {entry.id:32s} {entry.status_on(today()):10s} {sizes}  {batch}")


@generative_models.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Validate catalogue files (default: the built-in and configured directories)."""
    mine = get_settings().generation.model_catalogue_dir
    folders = (BUILTIN_CATALOGUE_DIR, *([mine] if mine else []))
    files = [
        p
        for path in (paths or folders)
        for p in (sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    ]
    errors = 0
    for file in files:
        try:
            catalog = parse_catalog(file.read_bytes(), str(file))
            click.echo(
                f"ok     {file.name}: {len(catalog.models)} models, default {catalog.default}"
            )
        except ModelCatalogError as error:
            errors += 1
            click.echo(f"error  {error}", err=True)
    sys.exit(1 if errors else 0)
