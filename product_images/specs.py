"""Marketplace image rules as data: `platform_specs/*.yaml` validated by `PlatformSpec`.

The file name is the platform name (`amazon.yaml` -> `amazon`). Later directories override
earlier ones, so a user's directory can add a marketplace or replace a built-in one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from product_images.datafiles import describe_validation, load_folders, package_folder, read_mapping
from product_images.errors import SpecError, UnknownPlatformError

__all__ = [
    "BUILTIN_SPECS_DIR",
    "PlatformSpec",
    "ShadowSpec",
    "SlotSpec",
    "Variant",
    "load_spec_file",
    "load_specs",
    "select_platforms",
]

#: The built-in marketplace files. `product_images/platform_specs` links to the checkout's
#: top-level `platform_specs/`, so a wheel carries them as package data: an installed worker
#: has no checkout to find them in.
BUILTIN_SPECS_DIR = package_folder("product_images", "platform_specs")

Variant = Literal["white", "scene", "detail"]
Fit = Literal["pad", "contain", "cover"]
ImageFormat = Literal["jpeg", "png", "webp"]
MetadataKind = Literal["icc", "exif", "xmp"]

_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ASPECT = re.compile(r"^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$")


class ShadowSpec(BaseModel):
    """The shadow a slot's white image shows under the product (see imaging/floor_shadow.py).

    Opacities 0..1; 0 leaves that layer out. The parameters are those the paid services
    expose: softness, intensity (the opacities), direction and spread.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    contact: float = Field(
        default=0.0, ge=0, le=1, description="Opacity of the contact shadow under the base."
    )
    cast: float = Field(
        default=0.0, ge=0, le=1, description="Opacity of the shadow cast away from the light."
    )
    reflection: float = Field(
        default=0.0, ge=0, le=1, description="Opacity of a mirror reflection on the floor."
    )
    direction: float = Field(
        default=60.0,
        ge=0,
        lt=360,
        description="Where the cast shadow falls, degrees: 0 right, 90 away, 180 left, "
        "270 towards the camera.",
    )
    length: float = Field(
        default=0.35, ge=0, le=2, description="Cast shadow length, share of product height."
    )
    softness: float = Field(
        default=0.5, ge=0, le=1, description="0 hard edges, 1 very soft (penumbra)."
    )
    spread: float = Field(
        default=0.02, ge=0, le=0.2, description="Contact shadow's spread, share of width."
    )
    reach: float = Field(
        default=0.06,
        gt=0,
        le=0.5,
        description="Nothing is drawn farther than this share of the product's longer side "
        "beyond its box (keeps margins and frame edges clean).",
    )

    @property
    def key(self) -> str:
        """A short stable name for the master this shadow makes, e.g. 'contact-3f2a9c01'."""
        layers = [n for n in ("contact", "cast", "reflection") if getattr(self, n) > 0]
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:8]
        return f"{'+'.join(layers) or 'none'}-{digest}"


class SlotSpec(BaseModel):
    """One image slot of a marketplace listing and the rules its image must meet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Slot name, e.g. 'main'.")
    variant: Variant = Field(description="Which master the slot shows: white, scene or detail.")
    width: int | None = Field(default=None, gt=0, description="Exact output width in pixels.")
    height: int | None = Field(default=None, gt=0, description="Exact output height in pixels.")
    aspect: str | None = Field(default=None, description="W:H when no exact size, e.g. '4:5'.")
    long_side: int | None = Field(default=None, gt=0, description="Target longest side (px).")
    min_side: int = Field(default=1, gt=0, description="Smallest allowed shortest side (px).")
    max_side: int = Field(default=100_000, gt=0, description="Largest allowed longest side (px).")
    fit: Fit = Field(
        default="pad",
        description="pad: product at `fill` on the background; contain: whole master inside; "
        "cover: master cropped to fill the frame around the product.",
    )
    fill: float | None = Field(
        default=None, gt=0, le=1, description="Target share of the frame the product spans."
    )
    min_fill: float | None = Field(
        default=None, gt=0, le=1, description="Smallest product fill the marketplace accepts."
    )
    max_fill: float | None = Field(
        default=None, gt=0, le=1, description="Largest product fill (margin rules)."
    )
    background: str = Field(default="#FFFFFF", description="Background colour, #RRGGBB.")
    pure_white: bool = Field(
        default=False, description="Every background pixel must be exactly 255,255,255."
    )
    format: ImageFormat = Field(default="jpeg", description="Output encoding.")
    quality: int = Field(default=90, ge=1, le=100, description="Starting encoder quality.")
    min_quality: int = Field(default=60, ge=1, le=100, description="Lowest quality to try.")
    max_bytes: int | None = Field(default=None, gt=0, description="File size limit in bytes.")
    color_space: Literal["sRGB"] = Field(default="sRGB", description="Output colour space.")
    embed_icc: bool = Field(default=True, description="Embed the sRGB ICC profile.")
    keep_metadata: list[MetadataKind] = Field(
        default_factory=list, description="Metadata kept besides the ICC profile."
    )
    shadow: ShadowSpec | None = Field(
        default=None, description="White slots: the product's shadow; unset = none."
    )

    @field_validator("background")
    @classmethod
    def _check_colour(cls, value: str) -> str:
        if not _HEX_COLOUR.match(value):
            raise ValueError(f"must be a colour like '#FFFFFF', got {value!r}")
        return value.upper()

    @field_validator("aspect")
    @classmethod
    def _check_aspect(cls, value: str | None) -> str | None:
        if value is not None and not _ASPECT.match(value):
            raise ValueError(f"must look like '4:5', got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_size(self) -> SlotSpec:
        exact = self.width is not None and self.height is not None
        if (self.width is None) != (self.height is None):
            raise ValueError("width and height go together")
        if not exact and (self.aspect is None or self.long_side is None):
            raise ValueError("give either width and height, or aspect and long_side")
        if self.fit == "pad" and self.fill is None:
            raise ValueError("fit 'pad' needs a fill ratio")
        if self.pure_white and self.background != "#FFFFFF":
            raise ValueError("pure_white needs background '#FFFFFF'")
        if self.min_quality > self.quality:
            raise ValueError("min_quality is above quality")
        self._check_shadow()
        lo, hi = self.size_limits()
        if not lo <= max(self.target_size()) <= hi or min(self.target_size()) < self.min_side:
            raise ValueError(f"target size {self.target_size()} is outside min/max sides")
        return self

    def _check_shadow(self) -> None:
        """A shadow must not reach the frame edge (pure white) nor push the measured fill
        past the slot's maximum: the product box grows by `reach` on each side at most."""
        if self.shadow is None:
            return
        if self.variant != "white":
            raise ValueError("shadow: only white slots take a shadow (scenes light their own)")
        fill = self.fill or 1.0
        margin = (1 / fill - 1) / 2  # frame beyond the product box, share of its long side
        if self.fit == "pad" and self.shadow.reach >= margin - 0.01:
            raise ValueError(
                f"shadow.reach: {self.shadow.reach} reaches the frame edge at fill {fill} "
                f"(keep it under {margin - 0.01:.3f})"
            )
        if self.max_fill is not None and fill * (1 + 2 * self.shadow.reach) > self.max_fill:
            raise ValueError(
                f"shadow.reach: {self.shadow.reach} can push the measured fill past "
                f"max_fill {self.max_fill}"
            )

    def shadow_key(self) -> str:
        """Which white master this slot shows: '' for none, else the shadow's key."""
        return self.shadow.key if self.shadow is not None else ""

    def master_look(self) -> str:
        """Which master of its variant this slot shows ('' = the plain one): white slots
        the one with their shadow, non-square detail slots one cropped at their aspect
        ('4x5'), so no later crop cuts a word."""
        if self.variant == "white":
            return self.shadow_key()
        if self.variant == "detail" and self.aspect_ratio() != 1:
            ratio = Fraction(*self.target_size())
            return f"{ratio.numerator}x{ratio.denominator}"
        return ""

    def size_limits(self) -> tuple[int, int]:
        """The allowed range of the longest side."""
        return self.min_side, self.max_side

    def aspect_ratio(self) -> float:
        """Width divided by height."""
        if self.width is not None and self.height is not None:
            return self.width / self.height
        match = _ASPECT.match(self.aspect or "")
        assert match is not None  # guaranteed by validation
        return float(Fraction(match.group(1)) / Fraction(match.group(2)))

    def target_size(self) -> tuple[int, int]:
        """The pixel size we render this slot at."""
        if self.width is not None and self.height is not None:
            return self.width, self.height
        ratio, side = self.aspect_ratio(), self.long_side or 0
        if ratio >= 1:
            return side, max(1, round(side / ratio))
        return max(1, round(side * ratio)), side

    def background_rgb(self) -> tuple[int, int, int]:
        """The background colour as an RGB tuple."""
        return tuple(int(self.background[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    @property
    def extension(self) -> str:
        """File extension of the output."""
        return {"jpeg": "jpg", "png": "png", "webp": "webp"}[self.format]


class PlatformSpec(BaseModel):
    """A marketplace: where its rules come from and the slots of a listing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="From the file name.")
    title: str = Field(description="Human name, e.g. 'Amazon'.")
    sources: list[str] = Field(min_length=1, description="URLs the rules were taken from.")
    notes: str = Field(default="", description="Caveats about the rules.")
    slots: list[SlotSpec] = Field(min_length=1, description="Image slots of a listing.")
    version: str = Field(default="", description="sha256 of the spec file (set on load).")

    @field_validator("slots")
    @classmethod
    def _unique_slots(cls, slots: list[SlotSpec]) -> list[SlotSpec]:
        names = [slot.name for slot in slots]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate slot names: {', '.join(duplicates)}")
        return slots

    def slot(self, name: str) -> SlotSpec:
        """The slot called `name`."""
        for slot in self.slots:
            if slot.name == name:
                return slot
        known = ", ".join(s.name for s in self.slots)
        raise UnknownPlatformError(f"{self.name} has no slot {name!r} (slots: {known})")

    def variants(self) -> set[Variant]:
        """The master variants this platform's slots need."""
        return {slot.variant for slot in self.slots}


def load_spec_file(path: Path) -> PlatformSpec:
    """Read and validate one spec file; errors name the file and the field."""
    data, raw = read_mapping(path)
    data = {**data, "name": path.stem, "version": hashlib.sha256(raw).hexdigest()[:16]}
    try:
        return PlatformSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path.name}: {describe_validation(exc)}") from exc


def load_specs(dirs: Iterable[Path] = (BUILTIN_SPECS_DIR,)) -> dict[str, PlatformSpec]:
    """Every platform defined in `dirs`; a later directory overrides an earlier one."""
    return load_folders(dirs, load_spec_file, "spec")


def select_platforms(specs: dict[str, PlatformSpec], names: Sequence[str]) -> list[PlatformSpec]:
    """The specs named in `names`, in order; unknown names raise with the known list."""
    unknown = [n for n in names if n not in specs]
    if unknown:
        known = ", ".join(sorted(specs))
        raise UnknownPlatformError(f"unknown platform(s) {', '.join(unknown)}; known: {known}")
    return [specs[n] for n in names]
