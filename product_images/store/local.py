"""A store on the local filesystem: each key is a file under the root directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from product_images.errors import ObjectNotFoundError, StorageError
from product_images.store.base import ObjectInfo, Store

__all__ = ["TEMP_PREFIX", "LocalStore", "check_key", "check_prefix", "read_file"]

#: Name prefix of the temporary files `put` writes before renaming; `list` skips them.
TEMP_PREFIX = ".~tmp-"


def check_prefix(prefix: str) -> str:
    """A listing prefix: "" or a key, optionally ending in "/"."""
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key, else raise StorageError."""
    if not key:
        raise StorageError("empty storage key")
    if key.startswith("/") or "\\" in key:
        raise StorageError(f"storage key must be relative and use '/': {key!r}")
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise StorageError(f"storage key contains control characters: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", "..") or part.startswith(TEMP_PREFIX):
            raise StorageError(f"storage key has an invalid segment {part!r}: {key!r}")
    return key


def read_file(path: Path, name: str) -> bytes:
    """A file's bytes; a missing file is ObjectNotFoundError(name), other failures StorageError."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ObjectNotFoundError(name) from None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc


class LocalStore(Store):
    """Keys map to files under `root` (created if missing); writes are atomic renames."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create store directory {self.root}: {exc}") from exc
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file that holds `key`; refuses keys (or symlinks) that leave the root."""
        path = self.root / check_key(key)
        if not path.resolve().is_relative_to(self.root):
            raise StorageError(f"storage key escapes the store root: {key!r}")
        return path

    def get(self, key: str) -> bytes:
        return read_file(self.path(key), key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def put_if_absent(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return _exclusive_write(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def copy(
        self, source: str, target: str, content_type: str = "application/octet-stream"
    ) -> None:
        """A hard link renamed over `target`: no bytes copied, and still atomic."""
        src, path = self.path(source), self.path(target)
        if not src.is_file():
            raise ObjectNotFoundError(source)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
            os.link(src, temp)
            os.replace(temp, path)
        except OSError as exc:
            raise StorageError(f"cannot copy {src} to {path}: {exc}") from exc
        _fsync_dir(path.parent)

    def head(self, key: str) -> ObjectInfo:
        """Local files have no ETag or metadata; the time is when the file landed here."""
        path = self.path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(key) from None
        except OSError as exc:
            raise StorageError(f"cannot stat {path}: {exc.strerror or exc}") from exc
        if not path.is_file():
            raise ObjectNotFoundError(key)
        # `cp -p`, rsync -t and unzip keep an old mtime; the ctime is set when the file
        # is created or moved here and cannot be set by hand, so the later of the two
        # is when the object arrived.
        arrived = max(stat.st_mtime, stat.st_ctime)
        return ObjectInfo(
            key=key, size=stat.st_size, last_modified=datetime.fromtimestamp(arrived, UTC)
        )

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        start = self.root / prefix.rpartition("/")[0]
        keys = (key for key in self._walk(start) if key.startswith(prefix))
        yield from sorted(keys)

    def link(self, key: str, expires_in: int = 3600) -> str:
        return self.path(key).as_uri()

    def _walk(self, start: Path) -> Iterator[str]:
        """Keys of all files under `start`, skipping temporary files."""
        for folder, _dirs, files in os.walk(start, onerror=_raise_storage_error):
            base = Path(folder).relative_to(self.root)
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    yield (base / name).as_posix()


def _raise_storage_error(exc: OSError) -> None:
    if not isinstance(exc, FileNotFoundError | NotADirectoryError):
        raise StorageError(f"cannot list {exc.filename}: {exc.strerror}") from exc


def _durable_temp(folder: Path, data: bytes) -> str:
    """A complete, fsynced temp file in `folder` (removed again if writing fails)."""
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync it, then rename it over `path`."""
    temp = _durable_temp(path.parent, data)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _exclusive_write(path: Path, data: bytes) -> bool:
    """Write a complete temp file, then hard-link it to `path`: the link fails if it exists."""
    temp = _durable_temp(path.parent, data)
    try:
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    _fsync_dir(path.parent)
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; some filesystems do not support this, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
