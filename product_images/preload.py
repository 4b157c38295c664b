"""What every product needs and a process loads once: the platform spec tables and the neural
segmenter's onnxruntime session. Pixel worker processes load them before any work
(`warm_up`, run by `product_images.workers`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from product_images.native_threads import single_threaded_blas
from product_images.segmenters import NeuralSegmenter, find_segmenter
from product_images.settings import Settings, get_settings
from product_images.specs import PlatformSpec, load_specs

__all__ = ["platform_table", "segmenter_of", "warm_up"]


@lru_cache(maxsize=8)
def _specs(dirs: tuple[Path, ...]) -> dict[str, PlatformSpec]:
    return load_specs(dirs)


def platform_table(settings: Settings) -> dict[str, PlatformSpec]:
    """Every platform spec the settings' folders hold, read once per process and folders."""
    return _specs(tuple(settings.spec_dirs()))


def segmenter_of(settings: Settings) -> NeuralSegmenter | None:
    """The neural segmenter the settings name, loaded once per process; None: classical."""
    chosen = settings.imaging
    return find_segmenter(
        chosen.segmenter, chosen.models_dir, chosen.segmenter_specs_dir, chosen.segmenter_threads
    )


def warm_up() -> None:
    """Load what every product needs, once per process, before the first product."""
    single_threaded_blas()
    settings = get_settings()
    platform_table(settings)
    segmenter_of(settings)
