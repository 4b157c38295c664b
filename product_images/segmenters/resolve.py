"""From settings to a loaded segmenter, or to the classical fallback when its file is missing."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from product_images.errors import ModelFileError, SpecError
from product_images.segmenters.catalogue import load_segmenter_specs
from product_images.segmenters.files import verified_path
from product_images.segmenters.onnx import NeuralSegmenter, open_segmenter
from product_images.segmenters.spec import SegmenterSpec

__all__ = ["CLASSICAL", "find_segmenter", "missing_model_hint"]

CLASSICAL = "classical"
logger = logging.getLogger(__name__)


def find_segmenter(
    name: str, models_dir: Path, specs_dir: Path | None = None, threads: int = 1
) -> NeuralSegmenter | None:
    """The named segmenter, loaded once per process; None for 'classical' or when its weight
    file is missing or corrupt (logged once, with how to get it)."""
    if name == CLASSICAL:
        return None
    spec = _spec(name, specs_dir)
    try:
        path = _checked(spec, models_dir, _stamp(models_dir / spec.file))
    except ModelFileError as exc:
        _warn_once(str(exc))
        return None
    return open_segmenter(spec, path, threads)


def missing_model_hint(name: str, models_dir: Path, specs_dir: Path | None = None) -> str | None:
    """One line saying how to get the segmenter's model, or None when it is usable."""
    if name == CLASSICAL:
        return None
    spec = _spec(name, specs_dir)
    try:
        _checked(spec, models_dir, _stamp(models_dir / spec.file))
    except ModelFileError as exc:
        return f"classical cut-out only: {exc}"
    return None


@lru_cache(maxsize=8)
def _spec(name: str, specs_dir: Path | None) -> SegmenterSpec:
    specs = load_segmenter_specs([specs_dir] if specs_dir else [])
    if name not in specs:
        known = ", ".join([*sorted(specs), CLASSICAL])
        raise SpecError(f"unknown segmenter {name!r}; known: {known}")
    return specs[name]


def _stamp(path: Path) -> tuple[int, int]:
    """Size and modification time: a changed file is checked again."""
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=8)
def _checked(spec: SegmenterSpec, models_dir: Path, stamp: tuple[int, int]) -> Path:
    """The verified weight file; the checksum is read once per process and file version."""
    return verified_path(spec, models_dir)


@lru_cache(maxsize=8)
def _warn_once(message: str) -> None:
    logger.warning("%s (using the classical cut-out)", message)
