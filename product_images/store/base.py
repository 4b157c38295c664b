"""The store interface: objects addressed by keys relative to the store root."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from product_images.errors import ObjectNotFoundError

__all__ = ["ObjectInfo", "Store"]


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object besides its bytes."""

    key: str
    size: int
    #: When the object landed in the store (timezone-aware, UTC).
    last_modified: datetime
    #: The server's entity tag, without quotes; None when the store has none (local files).
    etag: str | None = None
    #: User metadata (S3 `x-amz-meta-*`). Listings do not carry it: `head` does.
    metadata: dict[str, str] = field(default_factory=dict)


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

    def copy(
        self, source: str, target: str, content_type: str = "application/octet-stream"
    ) -> None:
        """Copy one object to another key atomically (server-side where the store can).

        This default reads and writes; LocalStore hard-links and S3Store uses CopyObject.
        """
        self.put(target, self.get(source), content_type)

    def head(self, key: str) -> ObjectInfo:
        """Size, time, ETag and metadata of one object; ObjectNotFoundError when absent."""
        raise NotImplementedError(f"{type(self).__name__} cannot describe its objects")

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """`ObjectInfo` of every key under `prefix`, in lexical key order (metadata may be empty).

        The default asks `head` once per key; stores whose listings carry sizes and times
        (S3) answer from the listing instead.
        """
        for key in self.list(prefix):
            try:
                yield self.head(key)
            except ObjectNotFoundError:  # deleted between the listing and the look-up
                continue

    def put_if_absent(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        """Write the object only if the key is free; False (nothing written) if it is taken.

        This default checks, then writes: two writers can both win. LocalStore and S3Store
        make it one atomic step.
        """
        if self.exists(key):
            return False
        self.put(key, data, content_type)
        return True
