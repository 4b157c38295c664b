"""The offline backend: classical cut-out and procedural compositing, no key, no network."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from product_images.backends.base import MasterBackend, MasterContext, ProductCutout
from product_images.imaging.compose import (
    Master,
    compose_scene,
    compose_white,
    crop_detail,
    decontaminate,
)
from product_images.settings import Settings
from product_images.specs import Variant
from product_images.store import read_url

__all__ = ["LocalBackend"]


@lru_cache(maxsize=4)
def _scene_background(url: str) -> Image.Image:
    image = Image.open(io.BytesIO(read_url(url)))
    image.load()
    return image.convert("RGB")


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
            return crop_detail(product.rgb, cut.alpha, cut.box, settings.master_side)
        if variant == "white":
            return compose_white(
                _decontaminated(product),
                cut.alpha,
                cut.box,
                settings.master_side,
                settings.master_fill,
            )
        background = (
            _scene_background(settings.scene_background) if settings.scene_background else None
        )
        return self.scene(product, settings, background)

    def scene(
        self, product: ProductCutout, settings: Settings, background: Image.Image | None
    ) -> Master:
        """The real product (its cut-out pixels) standing in a scene on `background`, or on
        the studio sweep; also how a generated backdrop becomes a composite scene master."""
        cut = product.cutout
        return compose_scene(
            _decontaminated(product),
            cut.alpha,
            cut.box,
            settings.master_side,
            background,
            settings.scene_reflection,
        )
