"""The store a task talks to, opened once per process and URL."""

from __future__ import annotations

from functools import lru_cache

from product_images.store import Store, open_store

__all__ = ["store_at"]


@lru_cache(maxsize=8)
def store_at(url: str) -> Store:
    """The store at `url`; boto3 clients are thread-safe, so one per URL is shared."""
    return open_store(url)
