"""Incremental refresh: what changed since a product's manifest was written.

A product is redone only when its source photo, the spec file of one of its platforms, its
platform list, a prompt template or the model of a generated master, the backend routing, or
the code version changed. An unchanged product costs one manifest read and one source read.
"""

from __future__ import annotations

import hashlib

from product_images import __version__
from product_images.backends import configured_model
from product_images.errors import ObjectNotFoundError
from product_images.generative.templates import load_template
from product_images.manifest import Manifest, manifest_key
from product_images.pipeline import platforms_of
from product_images.request import ProductRequest
from product_images.settings import Settings
from product_images.store import Store, read_url

__all__ = ["refresh_reasons"]


def refresh_reasons(request: ProductRequest, store: Store, settings: Settings) -> list[str]:
    """Why this product must be made again; empty when its published outputs are current."""
    try:
        manifest = Manifest.model_validate_json(store.get(manifest_key(request.sku)))
    except ObjectNotFoundError:
        return ["new product"]
    try:
        source_sha = hashlib.sha256(read_url(request.source, settings=settings)).hexdigest()
    except ObjectNotFoundError:
        return ["source photo missing"]  # let the run report it with its typed error
    reasons = _input_changes(manifest, request, source_sha, settings)
    return reasons + _generation_changes(manifest, request, settings)


def _input_changes(
    manifest: Manifest, request: ProductRequest, source_sha: str, settings: Settings
) -> list[str]:
    reasons = []
    if manifest.source.sha256 != source_sha:
        reasons.append("source photo changed")
    if manifest.code_version != __version__:
        reasons.append(f"code version {manifest.code_version} -> {__version__}")
    specs = platforms_of(request, settings)
    if sorted(manifest.spec_versions) != sorted(s.name for s in specs):
        reasons.append("platforms changed")
    reasons += [
        f"spec {s.name} changed"
        for s in specs
        if s.name in manifest.spec_versions and manifest.spec_versions[s.name] != s.version
    ]
    return reasons


def _generation_changes(
    manifest: Manifest, request: ProductRequest, settings: Settings
) -> list[str]:
    model = configured_model(settings, request.backend)
    reasons = []
    for master in manifest.masters:
        if master.generated_by is None:
            if model is not None and master.variant != "white":
                reasons.append(f"{master.variant}: a generative backend is now configured")
            continue
        if model is not None and master.generated_by != model:
            reasons.append(f"{master.variant}: model {master.generated_by} -> {model}")
        template = load_template(master.variant, settings.generation.templates_dir)
        if master.template_sha256 != template.sha256:
            reasons.append(f"{master.variant}: prompt template changed")
    return reasons
