"""Generative image models as data: one catalogue file per provider, validated by pydantic.

`product_images/model_catalogue/<provider>.yaml` (package data) lists each model's id,
aliases, status and dates, image sizes with their output tokens and list price, aspect ratios,
reference-image limit, token prices and Batch discount. A file of the same name in the user's
directory (`PRODUCT_IMAGES_MODEL_CATALOGUE_DIR`) replaces the built-in one, so a price change or
a shutdown is an edit to a YAML file, not a release. Errors name the file and the field, like
platform specs.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from product_images.datafiles import describe_validation, package_folder, parse_mapping
from product_images.errors import ModelCatalogError

__all__ = [
    "BUILTIN_CATALOGUE_DIR",
    "PROVIDERS",
    "ModelCatalog",
    "ModelEntry",
    "ModelPrice",
    "SizeFacts",
    "Status",
    "load_catalog",
    "parse_catalog",
]

PROVIDERS = ("gemini", "openai")
BUILTIN_CATALOGUE_DIR = package_folder("product_images.model_catalogue")
Status = Literal["preview", "ga", "deprecated", "shut_down"]
_SIZE_KEY = re.compile(r"^(512|1K|2K|4K|\d+x\d+)$")


class ModelPrice(BaseModel):
    """USD per million tokens, and per image when the API reports no usage."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    image_usd: float | None = Field(
        default=None, ge=0, description="List price of one image, used when no tokens are reported."
    )

    def cost(self, prompt_tokens: int, output_tokens: int) -> float:
        """USD for one call."""
        return (
            prompt_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1e6


class SizeFacts(BaseModel):
    """One output size: the image tokens it is billed as and its list price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int = Field(gt=0, description="Output tokens one image of this size is billed as.")
    usd: float = Field(ge=0, description="List price of one image of this size (standard tier).")


class ModelEntry(BaseModel):
    """One model of a provider, as its vendor (or the sources we have) describe it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Id sent to the API.")
    nickname: str = Field(default="", description="Marketing name, e.g. 'Nano Banana Pro'.")
    aliases: list[str] = Field(
        default_factory=list, description="Other names for the same model (relays invent some)."
    )
    status: Status = Field(description="preview, ga, deprecated or shut_down as last announced.")
    released: date | None = Field(default=None, description="GA (or preview) date.")
    deprecated: date | None = Field(default=None, description="Date it was deprecated.")
    shutdown: date | None = Field(default=None, description="Date it stops answering.")
    shutdown_note: str = Field(default="", description="What sources say when they disagree.")
    replacements: list[str] = Field(
        default_factory=list, description="Ids of this catalogue to use instead, best first."
    )
    image_sizes: dict[str, SizeFacts] = Field(
        min_length=1, description="Output sizes ('1K', '2K'... or 'WxH') with tokens and price."
    )
    takes_image_size: bool = Field(
        description="Whether imageConfig.imageSize is sent (false: the model has one size)."
    )
    aspect_ratios: list[str] = Field(min_length=1, description="Aspect ratios it can draw.")
    max_reference_images: int = Field(ge=1, description="Input images it accepts per request.")
    input_usd_per_million: float = Field(ge=0, description="Input (text + image) token price.")
    output_usd_per_million: float = Field(ge=0, description="Output image token price.")
    batch_discount: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Batch API price as a share of the list price; "
        "null: no Batch API for this model.",
    )
    notes: str = Field(default="", description="Caveats and where the figures come from.")

    @model_validator(mode="after")
    def _check(self) -> ModelEntry:
        bad = [k for k in self.image_sizes if not _SIZE_KEY.match(k)]
        if bad:
            raise ValueError(f"image_sizes: unknown size(s) {bad} (512, 1K, 2K, 4K or WxH)")
        if self.status == "shut_down" and not self.replacements:
            raise ValueError("a shut_down model needs replacements")
        if self.shutdown and self.deprecated and self.shutdown < self.deprecated:
            raise ValueError("shutdown is before deprecated")
        return self

    def is_current(self) -> bool:
        """Whether the file announces it as usable (preview or ga)."""
        return self.status in ("preview", "ga")

    def names(self) -> list[str]:
        """The id and every alias."""
        return [self.id, *self.aliases]

    def status_on(self, today: date) -> Status:
        """The status on `today`: the announced one, moved on by dates that have passed."""
        if self.status == "shut_down" or (self.shutdown and self.shutdown <= today):
            return "shut_down"
        if self.status == "deprecated" or (self.deprecated and self.deprecated <= today):
            return "deprecated"
        return self.status

    def price(self) -> ModelPrice:
        """Token prices, with the dearest size's list price as the per-image fallback."""
        return ModelPrice(
            input_per_million=self.input_usd_per_million,
            output_per_million=self.output_usd_per_million,
            image_usd=max(size.usd for size in self.image_sizes.values()),
        )


class ModelCatalog(BaseModel):
    """Every model of one provider, and the default the project picked from them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field(description="From the file name: gemini or openai.")
    title: str = Field(description="Human name of the provider's image models.")
    sources: list[str] = Field(min_length=1, description="Where the facts come from.")
    default: str = Field(description="Id used when none is configured.")
    default_reason: str = Field(default="", description="Why this default.")
    notes: str = Field(default="", description="Caveats about the figures.")
    models: list[ModelEntry] = Field(min_length=1, description="The models.")
    version: str = Field(default="", description="sha256 of the file (set on load).")

    @model_validator(mode="after")
    def _check(self) -> ModelCatalog:
        names = [n.lower() for m in self.models for n in m.names()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"models: ids or aliases used twice: {', '.join(duplicates)}")
        ids = {m.id: m for m in self.models}
        for index, model in enumerate(self.models):
            unknown = [r for r in model.replacements if r not in ids]
            retired = [r for r in model.replacements if r in ids and not ids[r].is_current()]
            if unknown or retired:
                raise ValueError(
                    f"models.{index}.replacements: {', '.join(unknown + retired)} "
                    f"{'is not in this catalogue' if unknown else 'is not a current model'}"
                )
        if self.default not in ids or not ids[self.default].is_current():
            raise ValueError(f"default: {self.default!r} is not a current model of this catalogue")
        return self

    def find(self, name: str) -> ModelEntry | None:
        """The model whose id or alias is `name` (case-insensitive, 'models/' prefix ignored)."""
        wanted = name.strip().removeprefix("models/").lower()
        for model in self.models:
            if wanted in (n.lower() for n in model.names()):
                return model
        return None

    def current(self, today: date) -> list[ModelEntry]:
        """Models neither deprecated nor shut down on `today`, the default first."""
        live = [m for m in self.models if m.status_on(today) in ("preview", "ga")]
        return sorted(live, key=lambda m: m.id != self.default)


def parse_catalog(raw: bytes, filename: str) -> ModelCatalog:
    """Validate the bytes of one catalogue file; errors name the file and the field."""
    return _parse(raw, filename)


@lru_cache(maxsize=16)
def _parse(raw: bytes, filename: str) -> ModelCatalog:
    # Cached on the file's bytes: an edited file is a new key, so a stale entry cannot be used.
    data = parse_mapping(raw, filename, ModelCatalogError)
    provider = Path(filename).stem
    if data.get("provider", provider) != provider:
        raise ModelCatalogError(f"{filename}: provider: must match the file name ({provider})")
    data = {**data, "provider": provider, "version": hashlib.sha256(raw).hexdigest()[:16]}
    try:
        return ModelCatalog.model_validate(data)
    except ValidationError as exc:
        raise ModelCatalogError(f"{filename}: {describe_validation(exc)}") from exc


def load_catalog(provider: str, user_dir: Path | None = None) -> ModelCatalog:
    """The catalogue of `provider`: the user's `<provider>.yaml` if there is one, else ours."""
    if provider not in PROVIDERS:
        raise ModelCatalogError(f"no model catalogue for {provider!r} (known: {PROVIDERS})")
    if user_dir is not None:
        if not user_dir.is_dir():
            raise ModelCatalogError(f"{user_dir}: model catalogue directory does not exist")
        mine = user_dir / f"{provider}.yaml"
        if mine.is_file():
            return parse_catalog(mine.read_bytes(), str(mine))
    builtin = BUILTIN_CATALOGUE_DIR / f"{provider}.yaml"
    return parse_catalog(builtin.read_bytes(), f"{provider}.yaml")
