"""The store interface: objects addressed by keys relative to the store root."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

__all__ = ["Store"]


class Store(ABC):
    """A flat key -> bytes store. Keys use '/' and never start with it.

    Every `put` is atomic: a reader sees the old object or the new one, never a part.
    """

    #: The URL the store was opened from (no credentials in it).
    url: str

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; raises ObjectNotFoundError when absent."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write the object atomically, replacing any previous one."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether the key holds an object."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under `prefix`, in lexical order."""

    @abstractmethod
    def link(self, key: str, expires_in: int = 3600) -> str:
        """A URL a browser can open: a file:// path or a presigned https URL."""
