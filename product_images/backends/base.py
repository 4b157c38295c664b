"""The interface every master-making backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from product_images.imaging.compose import Master
from product_images.imaging.segment import Cutout
from product_images.manifest import CallRecord
from product_images.settings import Settings
from product_images.specs import Variant
from product_images.store import Store

__all__ = ["MasterBackend", "MasterContext", "ProductCutout"]


@dataclass(frozen=True)
class ProductCutout:
    """A decoded source photo (RGB, upright, sRGB) and its cut-out."""

    rgb: np.ndarray
    cutout: Cutout
    memo: dict[str, Any] = field(default_factory=dict, compare=False)  # per-product scratch


@dataclass
class MasterContext:
    """What a backend may need beyond pixels: the catalog row, the store, the run."""

    sku: str
    source_sha256: str
    store: Store
    fields: dict[str, str] = field(default_factory=dict)  # name, category, brand_style, ...
    run_id: str = ""
    tag: str = ""
    budget_usd: float | None = None  # the run's cap, shared by its products
    calls: list[CallRecord] = field(default_factory=list)  # paid calls, for the manifest


class MasterBackend(ABC):
    """Makes the white, scene and detail masters of one product."""

    name: str

    @abstractmethod
    def make_master(
        self, variant: Variant, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> Master:
        """The master for `variant`, with where the product sits and a confidence."""

    def detail_at(
        self, aspect: float, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> Master | None:
        """A detail master cropped at `aspect` (width / height) for slots of that shape, when
        this backend crops details itself; None: those slots crop the square one."""
        return None
