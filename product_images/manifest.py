"""What a product's run produced: the manifest, written last, is the publish point."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from product_images.store.layout import manifest_key, stable_key, versioned_key

__all__ = [
    "CallRecord",
    "CheckResult",
    "Manifest",
    "MasterRecord",
    "OutputRecord",
    "ProductResult",
    "ReviewFlag",
    "SourceInfo",
    "manifest_key",
    "stable_key",
    "versioned_key",
]

SCHEMA_VERSION = 1


class SourceInfo(BaseModel):
    """The source photo as it was read."""

    key: str = Field(description="Path or URL the photo was read from.")
    sha256: str
    width: int = Field(description="Width after EXIF orientation.")
    height: int = Field(description="Height after EXIF orientation.")
    format: str = Field(description="Decoder format name, e.g. JPEG.")
    notes: list[str] = Field(default_factory=list, description="What loading had to do.")


class CheckResult(BaseModel):
    """One compliance rule, measured on an output."""

    rule: str
    passed: bool
    measured: str
    expected: str


class ReviewFlag(BaseModel):
    """A reason a person should look at this product before it ships."""

    step: str
    reason: str
    confidence: float

    def text(self) -> str:
        """One line for a person: 'white: cluttered background (0.62)'."""
        return f"{self.step}: {self.reason} ({self.confidence:.2f})"


class CallRecord(BaseModel):
    """One call to a paid generative API (or a cache hit, which costs nothing)."""

    variant: str
    backend: str
    model: str
    outcome: str = Field(description="ok, cached, or the error reason (rate_limited, ...).")
    http_status: int | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


class MasterRecord(BaseModel):
    """A master image every slot of one variant is rendered from."""

    variant: str
    key: str
    width: int
    height: int
    sha256: str
    backend: str
    confidence: float
    product_box: tuple[int, int, int, int] = Field(
        description="left, top, right, bottom of the product inside the master."
    )
    generated_by: str | None = Field(
        default=None, description="Model id when a generative model made this master."
    )
    digital_source_type: str | None = Field(
        default=None,
        description="IPTC DigitalSourceType of the master and its outputs: "
        "trainedAlgorithmicMedia (the model drew it), compositeWithTrainedAlgorithmicMedia "
        "(the real product on generated parts), none for purely local masters.",
    )
    template_sha256: str | None = Field(
        default=None, description="Hash of the prompt template a generated master came from."
    )
    notes: list[str] = Field(default_factory=list, description="What post-processing did.")
    look: str = Field(
        default="",
        description="Which take of the variant: '' the plain one; white: the key of the slot "
        "shadow drawn in; detail: the aspect it is cropped at ('4x5').",
    )
    rank: int = Field(
        default=0,
        ge=0,
        description="0: the master slots show; 1, 2...: ranked alternatives (detail crops) "
        "kept for a person to choose from.",
    )
    segmenter: str | None = Field(
        default=None,
        description="What made the cut-out's mask: 'u2netp+classical' (the neural model, "
        "finished by the colour analysis), 'classical' (no model file) or 'source-alpha'.",
    )


class OutputRecord(BaseModel):
    """One rendered marketplace image."""

    platform: str
    slot: str
    variant: str
    key: str
    width: int
    height: int
    format: str
    bytes: int
    sha256: str
    checks: list[CheckResult]
    digital_source_type: str | None = Field(
        default=None, description="IPTC DigitalSourceType written into the image's XMP, if any."
    )

    @property
    def passed(self) -> bool:
        """Whether every rule passed."""
        return all(check.passed for check in self.checks)


class Manifest(BaseModel):
    """Everything one product run produced. Readers trust only products that have one."""

    schema_version: int = SCHEMA_VERSION
    sku: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    backend: str
    code_version: str
    source: SourceInfo
    masters: list[MasterRecord]
    cutout: MasterRecord | None = Field(
        default=None, description="RGBA cut-out on the source's pixel grid (alpha = our mask)."
    )
    outputs: list[OutputRecord]
    needs_review: list[ReviewFlag] = Field(default_factory=list)
    spec_versions: dict[str, str] = Field(default_factory=dict)
    calls: list[CallRecord] = Field(default_factory=list, description="Paid API calls made.")

    @property
    def cost_usd(self) -> float:
        """What this product's generations cost."""
        return round(sum(call.cost_usd for call in self.calls), 6)

    def published_keys(self) -> dict[str, str]:
        """Every object this manifest lists (masters and outputs): key -> sha256."""
        cutout = [self.cutout] if self.cutout else []
        records: list[MasterRecord | OutputRecord] = [*self.masters, *cutout, *self.outputs]
        return {record.key: record.sha256 for record in records}

    @property
    def all_checks_passed(self) -> bool:
        """Whether every output passed every rule."""
        return all(output.passed for output in self.outputs)


class ProductResult(BaseModel):
    """How one product of a run ended; the run summary is a list of these."""

    sku: str
    status: Literal["done", "failed", "skipped", "unchanged", "deferred"]
    reason: str = Field(default="", description="Machine reason when failed, e.g. corrupt_image.")
    message: str = Field(default="", description="One line for a person.")
    manifest_key: str | None = None
    needs_review: bool = False
    review_reasons: list[str] = Field(
        default_factory=list, description="Why it needs review: 'step: reason (confidence)'."
    )
    outputs: int = 0
    paid_calls: int = 0
    cost_usd: float = 0.0
