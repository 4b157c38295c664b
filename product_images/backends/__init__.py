"""Backends make masters. Picking one is a setting; `get_backend` is the one place that does."""

from __future__ import annotations

from product_images.backends.base import MasterBackend, ProductCutout
from product_images.backends.local import LocalBackend
from product_images.errors import SettingsError

__all__ = ["LocalBackend", "MasterBackend", "ProductCutout", "get_backend"]


def get_backend(name: str) -> MasterBackend:
    """The backend called `name`."""
    if name == "local":
        return LocalBackend()
    raise SettingsError(f"unknown backend {name!r}; available: local")
