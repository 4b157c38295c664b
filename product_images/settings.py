"""The one typed settings object, read once from the environment (prefix PRODUCT_IMAGES_).

Every knob has a default and a description; `product-images settings` prints them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from product_images.specs import BUILTIN_SPECS_DIR

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Pipeline configuration. Environment variables: PRODUCT_IMAGES_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="PRODUCT_IMAGES_", extra="ignore")

    store: str = Field(
        default="./out",
        description="Where outputs go: a local folder or s3://bucket/prefix.",
    )
    specs_dir: Path | None = Field(
        default=None,
        description="Extra directory of platform spec YAML files (overrides built-ins by name).",
    )
    platforms: list[str] = Field(
        default_factory=lambda: ["amazon", "shopify", "instagram"],
        description="Platforms rendered when none are given.",
    )
    backend: Literal["local"] = Field(
        default="local", description="Backend that makes the masters."
    )
    max_pixels: int = Field(
        default=100_000_000,
        gt=0,
        description="Largest source image (width x height) accepted; guards decompression bombs.",
    )
    min_side: int = Field(
        default=64, gt=0, description="Smallest shortest side (px) of a usable source photo."
    )
    max_source_bytes: int = Field(
        default=200_000_000, gt=0, description="Largest source file accepted, in bytes."
    )
    working_side: int = Field(
        default=400,
        ge=128,
        description="Longest side at which the cut-out is segmented before full-size refinement.",
    )
    master_side: int = Field(
        default=2048, ge=256, description="Longest side of the white, scene and detail masters."
    )
    master_fill: float = Field(
        default=0.85, gt=0, le=1, description="Product fill of the white master."
    )
    review_threshold: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Confidence under which a cut-out is flagged needs_review.",
    )
    scene_background: str | None = Field(
        default=None,
        description="Optional background photo (path or s3:// URL) for scene masters; "
        "a procedural studio backdrop is drawn when unset.",
    )
    scene_reflection: bool = Field(
        default=False, description="Add a faint floor reflection under the product in scenes."
    )
    concurrency: int = Field(
        default=2, ge=1, le=64, description="Products processed at once by a catalog run."
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Threads one product's masters and slots are made with (Pillow and OpenCV "
        "release the GIL while they work).",
    )
    engine: Literal["auto", "prefect", "inline"] = Field(
        default="auto",
        description="How the CLI runs the pipeline: 'prefect' runs the flows (a temporary "
        "server when PREFECT_API_URL is unset), 'inline' calls the same steps in-process, "
        "'auto' picks prefect when PREFECT_API_URL is set and inline otherwise.",
    )

    def spec_dirs(self) -> list[Path]:
        """Built-in spec directory, then the user's."""
        return [BUILTIN_SPECS_DIR, *([self.specs_dir] if self.specs_dir else [])]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
