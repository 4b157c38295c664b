"""The segmenter specs: built in as package data, plus a user's directory that adds or
replaces them by name, validated like the platform specs (errors name the file and field)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from product_images.datafiles import (
    describe_validation,
    load_folders,
    package_folder,
    read_mapping,
)
from product_images.errors import SpecError
from product_images.segmenters.spec import SegmenterSpec

__all__ = ["builtin_dir", "load_segmenter_file", "load_segmenter_specs"]


def builtin_dir() -> Path:
    """The specs shipped inside the package."""
    return package_folder("product_images.segmenters", "builtin")


def load_segmenter_file(path: Path) -> SegmenterSpec:
    """Read and validate one segmenter spec file."""
    data, _raw = read_mapping(path)
    try:
        return SegmenterSpec.model_validate({**data, "name": path.stem})
    except ValidationError as exc:
        raise SpecError(f"{path.name}: {describe_validation(exc)}") from exc


def load_segmenter_specs(extra: Iterable[Path] = ()) -> dict[str, SegmenterSpec]:
    """Every segmenter spec, built-in first; a later directory overrides by name."""
    return load_folders((builtin_dir(), *extra), load_segmenter_file, "segmenter spec")
