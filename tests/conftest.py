"""Shared fixtures. S3: one SeaweedFS server per test session, started only when a test asks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from product_images.store import S3Store
from product_images.testing.fixtures.images import draw_product
from product_images.testing.seaweedfs import SeaweedServer

__all__ = ["photo", "s3_env", "s3_store", "seaweed"]


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    """A SeaweedFS S3 server on 127.0.0.1 for the whole session (about 1 s to start)."""
    with SeaweedServer() as server:
        yield server


@pytest.fixture
def s3_store(seaweed: SeaweedServer) -> Iterator[S3Store]:
    """An S3Store on a fresh, uniquely named bucket; the bucket is deleted afterwards."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    seaweed.create_bucket(bucket)
    yield S3Store(bucket, client=seaweed.client())
    # Each bucket holds one of the server's volume slots: give it back.
    with contextlib.suppress(BotoCoreError, ClientError):
        seaweed.delete_bucket(bucket)


@pytest.fixture
def s3_env(seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> SeaweedServer:
    """The standard AWS environment pointed at the test server, as a user would set it."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return seaweed


@pytest.fixture
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A drawn 900x700 product photo (JPEG) with a known, clean background."""
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    draw_product(size=(900, 700))[0].save(path, quality=92)
    return path


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are read once per process; a test that changes the environment must not leave
    its settings cached for the next test."""
    from product_images.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
