"""The offline backend: classical cut-out and procedural compositing, no key, no network."""

from __future__ import annotations

import numpy as np
from PIL import Image

from product_images.backends.backdrops import best_backdrop
from product_images.backends.base import MasterBackend, MasterContext, ProductCutout
from product_images.imaging.compose import (
    Master,
    compose_scene,
    compose_white,
    crop_detail,
    decontaminate,
)
from product_images.imaging.scenes.sizes import real_size_cm
from product_images.imaging.scenes.stage import tone_of
from product_images.settings import Settings
from product_images.specs import Variant

__all__ = ["LocalBackend"]


def _decontaminated(product: ProductCutout) -> np.ndarray:
    """Edge colours solved once per product, shared by the white and scene masters."""
    cached = product.memo.get("decontaminated")
    if cached is None:
        cut = product.cutout
        cached = product.memo["decontaminated"] = decontaminate(
            product.rgb, cut.alpha, cut.background_rgb
        )
    return cached


class LocalBackend(MasterBackend):
    """Masters from the local cut-out: pure white, a studio scene, a detail crop."""

    name = "local"

    def make_master(
        self, variant: Variant, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> Master:
        """The master for `variant`."""
        cut = product.cutout
        if variant == "detail":
            return crop_detail(product.rgb, cut.alpha, cut.box, settings.imaging.master_side)
        if variant == "white":
            return compose_white(
                _decontaminated(product),
                cut.alpha,
                cut.box,
                settings.imaging.master_side,
                settings.imaging.master_fill,
            )
        return self.scene(product, settings, context)

    def scene(
        self,
        product: ProductCutout,
        settings: Settings,
        context: MasterContext,
        backdrop: Image.Image | None = None,
    ) -> Master:
        """The real product (its cut-out pixels) standing in a scene; also how a generated
        backdrop becomes a composite scene master."""
        return _scene(product, settings, context, backdrop)

    def detail_at(
        self, aspect: float, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> Master | None:
        """The best detail crop at the slots' own aspect (no later crop can cut a word)."""
        cut = product.cutout
        return crop_detail(product.rgb, cut.alpha, cut.box, settings.imaging.master_side, 0, aspect)


def _scene(
    product: ProductCutout,
    settings: Settings,
    context: MasterContext,
    backdrop: Image.Image | None,
) -> Master:
    """On `backdrop` when given (a generated empty set), else on the user's backdrop photo
    that suits the product best, else on a drawn surface."""
    cut = product.cutout
    chosen = (backdrop, "generated backdrop") if backdrop is not None else None
    if chosen is None and settings.imaging.scene_background:
        chosen = best_backdrop(settings.imaging.scene_background, tone_of(product.rgb, cut.alpha))
    photo, name = chosen if chosen else (None, "")
    size = real_size_cm(context.fields.get("name", ""), context.fields.get("category", ""))
    return compose_scene(
        _decontaminated(product),
        cut.alpha,
        cut.box,
        settings.imaging.master_side,
        photo,
        settings.imaging.scene_reflection,
        size,
        name,
    )
