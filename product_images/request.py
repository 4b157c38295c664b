"""The one input type: a product to make.

The CLI (`run`, `batch`), the catalog loader, the Prefect Run form, an upload event and `retry`
all produce a `ProductRequest`, and the flows, tasks and steps all take it whole: a field set
anywhere reaches the prompt, the cache key and the status record (`retry` reruns exactly what
was asked, so its generations come from the cache).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from product_images.errors import InvalidSkuError
from product_images.specs import Variant

__all__ = ["SKU_PATTERN", "ProductRequest", "check_sku"]

#: A SKU safe as a storage key, for both Python and JSON Schema (the Run form checks it in
#: the browser and the server): letters, digits, '.', '_', '-', no '..', 1-128 characters.
#: It ends in (?![\s\S]) rather than $, which in Python also matches before a final newline.
SKU_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?![\s\S])"
_SKU = re.compile(SKU_PATTERN)


def check_sku(sku: str) -> str:
    """The SKU if it is safe as a storage key; otherwise InvalidSkuError."""
    if not _SKU.match(sku):
        raise InvalidSkuError(
            f"SKU {sku!r} is not usable as a storage key: use letters, digits, '.', '_' "
            "and '-' (no slashes, no '..', at most 128 characters)"
        )
    return sku


class ProductRequest(BaseModel):
    """One product to make: a catalog row, a Run form, an upload, a retry."""

    sku: str = Field(
        description="Stock keeping unit: letters, digits, '.', '_' and '-' (no '..', at most "
        "128); the product's folder in the store.",
        examples=["SKU-1234"],
        json_schema_extra={"pattern": SKU_PATTERN},  # the Run form checks it as you type
    )
    source: str = Field(
        description="The product photo: a path on the machine that runs it, an s3:// URL, or "
        "an http(s) URL (public addresses only unless source_url_allow_private; size and time "
        "limited).",
        examples=["s3://product-photos/incoming/SKU-1234.jpg"],
    )
    platforms: list[str] = Field(
        default_factory=list,
        description="Marketplaces to render for; empty = the `platforms` setting.",
    )
    variants: list[Variant] | None = Field(
        default=None,
        description="Masters to make (white, scene, detail), and only the slots showing them; "
        "empty = every master the platforms need.",
    )
    name: str = Field(default="", description="Product name (fills the prompt templates).")
    category: str = Field(default="", description="Product category.")
    brand_style: str = Field(default="", description="Look and feel for generated scenes.")
    scene_hint: str = Field(default="", description="Where a generated scene is set.")
    backend: Literal["auto", "local", "gemini", "openai"] | None = Field(
        default=None, description="Backend for generated masters; empty = the `backend` setting."
    )
    budget_usd: float | None = Field(
        default=None,
        gt=0,
        description="Spending cap of the run for paid generation calls (USD); empty = the "
        "`budget_usd` setting.",
    )
    force: bool = Field(
        default=False,
        description="Make the product even when its photo, specs and settings did not change "
        "since its manifest (otherwise it is reported 'unchanged').",
    )
    tag: str = Field(default="", description="Catalog tag recorded in the cost ledger.")
    run_id: str = Field(
        default="", description="Run this product belongs to (its shared budget); set by the run."
    )

    def prompt_fields(self) -> dict[str, str]:
        """What prompt templates are filled from."""
        return {
            "name": self.name,
            "category": self.category,
            "brand_style": self.brand_style,
            "scene_hint": self.scene_hint,
        }
