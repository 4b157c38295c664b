"""The interface every master-making backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from product_images.imaging.compose import Master
from product_images.imaging.segment import Cutout
from product_images.settings import Settings
from product_images.specs import Variant

__all__ = ["MasterBackend", "ProductCutout"]


@dataclass(frozen=True)
class ProductCutout:
    """A decoded source photo (RGB, upright, sRGB) and its cut-out."""

    rgb: np.ndarray
    cutout: Cutout
    memo: dict[str, Any] = field(default_factory=dict, compare=False)  # per-product scratch


class MasterBackend(ABC):
    """Makes the white, scene and detail masters of one product."""

    name: str

    @abstractmethod
    def make_master(self, variant: Variant, product: ProductCutout, settings: Settings) -> Master:
        """The master for `variant`, with where the product sits and a confidence."""
