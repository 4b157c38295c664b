"""A content-addressed cache of generated images, kept in the store so every worker shares it.

key = sha256 of everything that decides the image: source bytes, rendered prompt, template
hash, backend, model and parameters. Same inputs, same key, no second paid call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from product_images.errors import ObjectNotFoundError
from product_images.store import Store
from product_images.store.layout import cache_keys

__all__ = ["CachedImage", "GenerationCache", "cache_key"]


def cache_key(parts: dict[str, Any]) -> str:
    """A stable sha256 over the JSON of `parts` (sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class CachedImage:
    """A generated image and what was recorded when it was made."""

    data: bytes
    meta: dict[str, Any]


class GenerationCache:
    """Generated images under `_cache/generated/<k[:2]>/<k>.img` with a `.json` beside it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _keys(self, key: str) -> tuple[str, str]:
        return cache_keys(key)

    def get(self, key: str) -> CachedImage | None:
        """The cached image, or None. Metadata is written last, so it marks a complete entry."""
        image_key, meta_key = self._keys(key)
        try:
            meta = json.loads(self.store.get(meta_key))
            return CachedImage(self.store.get(image_key), meta)
        except ObjectNotFoundError:
            return None

    def has(self, key: str) -> bool:
        """Whether a complete entry exists (its metadata is written last)."""
        return self.store.exists(self._keys(key)[1])

    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> None:
        """Store an image, then its metadata (the entry's commit point)."""
        image_key, meta_key = self._keys(key)
        self.store.put(image_key, data, meta.get("mime_type", "application/octet-stream"))
        self.store.put(meta_key, json.dumps(meta, sort_keys=True).encode(), "application/json")
