"""Prompt templates per variant: editable text files filled from the catalog row.

A template's content hash goes into every cache key, so editing `scene.txt` regenerates the
scene masters and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from string import Template

from product_images.datafiles import package_folder
from product_images.errors import SettingsError

__all__ = ["BUILTIN_TEMPLATES", "PromptTemplate", "load_template"]

BUILTIN_TEMPLATES = package_folder("product_images", "templates")

_DEFAULTS = {
    "name": "the product",
    "category": "",
    "brand_style": "clean, bright, natural and premium",
    "scene_hint": "a tasteful, uncluttered scene where this product is typically used",
}


@dataclass(frozen=True)
class PromptTemplate:
    """One variant's prompt template and the hash of its text."""

    variant: str
    text: str
    sha256: str

    def render(self, fields: dict[str, str]) -> str:
        """The prompt for one product; empty fields fall back to neutral defaults."""
        values = {k: (fields.get(k) or "").strip() or v for k, v in _DEFAULTS.items()}
        category = (fields.get("category") or "").strip()
        values["category_phrase"] = f", {category}" if category else ""
        return Template(self.text).safe_substitute(values).strip()


def load_template(variant: str, directory: Path | None = None) -> PromptTemplate:
    """The template for `variant`: the user's directory first, then the built-in one."""
    for folder in (directory, BUILTIN_TEMPLATES):
        if folder is not None and (folder / f"{variant}.txt").is_file():
            text = (folder / f"{variant}.txt").read_text(encoding="utf-8")
            return PromptTemplate(variant, text, hashlib.sha256(text.encode()).hexdigest())
    raise SettingsError(f"no prompt template for variant {variant!r} in {directory}")
