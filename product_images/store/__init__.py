"""Where outputs live: a local folder or an S3 bucket, behind one `Store` interface.

open_store("s3://bucket/prefix")   -> S3Store
open_store("file:///srv/out")      -> LocalStore (created if missing)
open_store("./out")                -> LocalStore
read_url("s3://bucket/photo.jpg")  -> bytes of one source object (or https://, or a local path)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from product_images.errors import ForbiddenSourceError, ObjectNotFoundError, StorageError
from product_images.store.base import ObjectInfo, Store
from product_images.store.local import LocalStore, read_file

if TYPE_CHECKING:
    from product_images.settings import Settings
    from product_images.store.s3 import S3Client, S3Store


def __getattr__(name: str) -> Any:
    # boto3 costs ~0.15 s to import; a run on a local folder never needs it.
    if name in ("S3Store", "S3Client"):
        from product_images.store import s3

        return getattr(s3, name)
    raise AttributeError(name)


__all__ = [
    "LocalStore",
    "ObjectInfo",
    "S3Store",
    "Store",
    "local_path",
    "open_store",
    "read_url",
    "split_s3_url",
]


def split_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/a/b.jpg' -> ('bucket', 'a/b.jpg'); the key may be ''."""
    if not url.startswith("s3://"):
        raise StorageError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise StorageError(f"s3:// URL without a bucket: {url!r}")
    return bucket, key


def local_path(url: str) -> Path:
    """The path of a 'file://' URL or a plain path."""
    if not url.startswith("file:"):
        return Path(url).expanduser()
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"file:// URL on another host is not supported: {url!r}")
    return Path(unquote(parts.path))


def open_store(url: str) -> Store:
    """The store for 's3://bucket/prefix', 'file:///path' or a plain path."""
    if url.startswith("s3://"):
        from product_images.store.s3 import S3Store

        bucket, prefix = split_s3_url(url)
        return S3Store(bucket, prefix)
    if "://" in url and not url.startswith("file://"):
        raise StorageError(f"unsupported store URL: {url!r} (use s3://, file:// or a path)")
    return LocalStore(local_path(url))


def read_url(url: str, client: S3Client | None = None, settings: Settings | None = None) -> bytes:
    """The bytes of one object: 's3://bucket/key', 'http(s)://...', 'file:///path' or a path.

    http(s) URLs are fetched under the checks of `product_images.sources` and `settings` (the
    process-wide ones when None); any other scheme is a ForbiddenSourceError.
    """
    if any(ord(char) < 32 or ord(char) == 127 for char in url):
        # No filesystem, bucket or server takes them; Path.read_bytes raises ValueError on NUL.
        raise ForbiddenSourceError(repr(url), "the location contains control characters")
    if url.startswith("s3://"):
        return _read_s3(url, client)
    scheme = url.partition("://")[0].lower() if "://" in url else "file"
    if scheme in ("http", "https"):
        from product_images.settings import get_settings
        from product_images.sources import fetch_url

        return fetch_url(url, settings or get_settings())
    if scheme != "file":
        raise ForbiddenSourceError(
            url,
            f"unsupported URL scheme {scheme}://; use https://, http://, s3://, file:// or a path",
        )
    return read_file(local_path(url), url)


def _read_s3(url: str, client: S3Client | None) -> bytes:
    from product_images.store.s3 import S3Store

    bucket, key = split_s3_url(url)
    if not key:
        raise StorageError(f"s3:// URL without an object key: {url!r}")
    try:
        return S3Store(bucket, client=client).get_raw(key)
    except ObjectNotFoundError:
        raise ObjectNotFoundError(url) from None
