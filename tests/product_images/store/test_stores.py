"""LocalStore and S3Store behave the same; S3 runs against a real SeaweedFS server."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config

from product_images.errors import ForbiddenSourceError, ObjectNotFoundError, StorageError
from product_images.store import (
    LocalStore,
    S3Store,
    Store,
    open_store,
    read_url,
    split_s3_url,
)
from product_images.store.local import TEMP_PREFIX
from product_images.store.s3 import S3Client, make_s3_client
from product_images.testing.seaweedfs import SeaweedServer, SeaweedStartError

__all__: list[str] = []

BAD_KEYS = [
    "",
    "../x",
    "a/../../x",
    "a/..",
    "./a",
    "/etc/passwd",
    "a\\b",
    "a\x00b",
    "a\nb",
    "a//b",
    "a/",
    f"a/{TEMP_PREFIX}x",
]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest) -> Store:
    """Each test below runs once per backend."""
    if request.param == "local":
        return LocalStore(request.getfixturevalue("tmp_path") / "store")
    store: Store = request.getfixturevalue("s3_store")
    return store


def test_round_trip(store: Store) -> None:
    store.put("sku-1/white.jpg", b"\xff\xd8jpeg", content_type="image/jpeg")
    assert store.get("sku-1/white.jpg") == b"\xff\xd8jpeg"
    if isinstance(store, S3Store):
        head = store.client.head_object(Bucket=store.bucket, Key="sku-1/white.jpg")
        assert head["ContentType"] == "image/jpeg"


def test_empty_object(store: Store) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.exists("empty")


def test_overwrite(store: Store) -> None:
    store.put("k", b"old")
    store.put("k", b"new")
    assert store.get("k") == b"new"
    assert list(store.list()) == ["k"]


def test_exists_and_delete(store: Store) -> None:
    assert not store.exists("a/b")
    store.put("a/b", b"x")
    assert store.exists("a/b")
    assert not store.exists("a")
    store.delete("a/b")
    assert not store.exists("a/b")
    store.delete("a/b")
    store.delete("never/there")


def test_get_missing_raises_not_found(store: Store) -> None:
    with pytest.raises(ObjectNotFoundError) as info:
        store.get("no/such/key")
    assert info.value.key == "no/such/key"
    assert isinstance(info.value, StorageError)


def test_list_prefix_and_order(store: Store) -> None:
    keys = ["b/2", "a/10", "a/2", "a/1", "ab", "a-b", "a/sub/x", "z"]
    for key in keys:
        store.put(key, key.encode())
    assert list(store.list()) == sorted(keys)
    assert list(store.list("a/")) == ["a/1", "a/10", "a/2", "a/sub/x"]
    assert list(store.list("a")) == ["a-b", "a/1", "a/10", "a/2", "a/sub/x", "ab"]
    assert list(store.list("a/1")) == ["a/1", "a/10"]
    assert list(store.list("a/sub/")) == ["a/sub/x"]
    assert list(store.list("nothing/")) == []


def test_list_many_keys(store: Store) -> None:
    """More than one S3 page (1000 keys)."""
    keys = [f"many/{i:05d}" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: store.put(key, b"."), keys))
    store.put("other", b".")
    assert list(store.list("many/")) == keys
    assert len(list(store.list())) == 1101


def test_link(store: Store) -> None:
    store.put("dir/pic.png", b"\x89PNG...", content_type="image/png")
    url = store.link("dir/pic.png", expires_in=60)
    if isinstance(store, LocalStore):
        assert url.startswith("file:///")
        assert Path(urlsplit(url).path).read_bytes() == b"\x89PNG..."
        return
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"\x89PNG..."
    assert response.headers["content-type"] == "image/png"


@pytest.mark.parametrize("key", BAD_KEYS)
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_bad_keys_refused(tmp_path: Path, backend: str, key: str) -> None:
    """Refused before any I/O: the S3 store points at a closed port and is never reached."""
    store: Store = LocalStore(tmp_path)
    if backend == "s3":
        store = S3Store("bucket", client=make_s3_client("http://127.0.0.1:9", max_attempts=1))
    for call in (store.get, store.exists, store.delete, store.link):
        with pytest.raises(StorageError):
            call(key)
    with pytest.raises(StorageError):
        store.put(key, b"x")


def test_local_key_cannot_escape_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    (tmp_path / "secret").write_bytes(b"s")
    with pytest.raises(StorageError):
        store.get("../secret")
    with pytest.raises(StorageError):
        list(store.list("../"))
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(StorageError, match="escapes"):
        store.get("link/secret")
    assert not (tmp_path / "x").exists()


def test_local_put_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"old")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StorageError, match="disk on fire"):
        store.put("k", b"new")
    assert store.get("k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_local_list_skips_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/k", b"x")
    (tmp_path / "a" / f"{TEMP_PREFIX}half-written").write_bytes(b"partial")
    assert list(store.list()) == ["a/k"]


def test_local_store_url_and_creation(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").is_dir()
    assert store.url == (tmp_path / "new" / "dir").as_uri()


@pytest.mark.s3
def test_s3_prefix(s3_store: S3Store) -> None:
    store = S3Store(s3_store.bucket, "runs/7/", client=s3_store.client)
    assert store.url == f"s3://{s3_store.bucket}/runs/7"
    store.put("sku/a.jpg", b"a")
    s3_store.put("outside", b"b")
    assert s3_store.get("runs/7/sku/a.jpg") == b"a"
    assert list(store.list()) == ["sku/a.jpg"]
    assert list(store.list("sku/")) == ["sku/a.jpg"]
    assert open_store(store.url).url == store.url


@pytest.mark.s3
def test_s3_tampered_link_is_refused(s3_store: S3Store) -> None:
    s3_store.put("k", b"secret bytes")
    url = s3_store.link("k")
    signature = url.split("X-Amz-Signature=")[1][:64]
    forged = url.replace(signature, signature[::-1])
    response = httpx.get(forged)
    assert response.status_code == 403
    assert b"secret bytes" not in response.content


@pytest.mark.s3
@pytest.mark.parametrize("wrong", ["secret", "access_key"])
def test_s3_wrong_credentials(seaweed: SeaweedServer, s3_store: S3Store, wrong: str) -> None:
    access_key, secret_key = seaweed.access_key, seaweed.secret_key
    if wrong == "secret":
        secret_key = "x" * 40
    else:
        access_key = "AKWRONGWRONGWRONG00"
    store = S3Store(s3_store.bucket, client=_client_with_keys(seaweed, access_key, secret_key))
    for call in (lambda: store.get("k"), lambda: store.put("k", b"x"), lambda: list(store.list())):
        with pytest.raises(StorageError) as info:
            call()
        message = str(info.value)
        assert s3_store.bucket in message
        assert "SignatureDoesNotMatch" in message or "InvalidAccessKeyId" in message
        for secret in (access_key, secret_key, seaweed.access_key, seaweed.secret_key):
            assert secret not in message
        assert not isinstance(info.value, ObjectNotFoundError)


def _client_with_keys(seaweed: SeaweedServer, access_key: str, secret_key: str) -> S3Client:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=seaweed.endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.mark.s3
def test_s3_store_from_environment(
    seaweed: SeaweedServer, s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_store.put("k", b"v")
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    assert S3Store(s3_store.bucket).get("k") == b"v"
    assert open_store(f"s3://{s3_store.bucket}").get("k") == b"v"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", seaweed.endpoint_url)
    assert S3Store(s3_store.bucket).get("k") == b"v"


@pytest.mark.s3
def test_s3_missing_bucket_is_storage_error(seaweed: SeaweedServer) -> None:
    store = S3Store("no-such-bucket-here", client=seaweed.client())
    with pytest.raises(StorageError) as info:
        store.get("k")
    assert not isinstance(info.value, ObjectNotFoundError)
    assert "NoSuchBucket" in str(info.value)


@pytest.mark.s3
def test_s3_server_down_then_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped server is a StorageError (fast); after start() the data is still there."""
    with SeaweedServer(tmp_path / "weed") as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        server.create_bucket("faults")
        store = S3Store("faults")  # the default client: 3 attempts, standard retry mode
        store.put("k", b"kept")
        server.stop()
        started = time.monotonic()
        with pytest.raises(StorageError, match="EndpointConnectionError") as info:
            store.get("k")
        assert time.monotonic() - started < 10
        assert "s3://faults/k" in str(info.value)
        assert server.secret_key not in str(info.value)
        assert server.access_key not in str(info.value)
        server.start()
        assert store.get("k") == b"kept"


def test_open_store_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    s3 = open_store("s3://my-bucket/out/run-1")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix, s3.url) == ("my-bucket", "out/run-1", "s3://my-bucket/out/run-1")
    local = open_store((tmp_path / "a b").as_uri())
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path / "a b"
    assert local.root.is_dir()
    plain = open_store(str(tmp_path / "plain"))
    assert isinstance(plain, LocalStore)
    assert plain.root == tmp_path / "plain"
    with pytest.raises(StorageError):
        open_store("ftp://host/x")
    with pytest.raises(StorageError):
        open_store("s3:///no-bucket")


def test_split_s3_url() -> None:
    assert split_s3_url("s3://bucket/a/b.jpg") == ("bucket", "a/b.jpg")
    assert split_s3_url("s3://bucket") == ("bucket", "")
    assert split_s3_url("s3://bucket/") == ("bucket", "")
    for bad in ("http://bucket/k", "s3://", "bucket/key"):
        with pytest.raises(StorageError):
            split_s3_url(bad)


def test_read_url_local(tmp_path: Path) -> None:
    photo = tmp_path / "photo 1.jpg"
    photo.write_bytes(b"jpg")
    assert read_url(str(photo)) == b"jpg"
    assert read_url(photo.as_uri()) == b"jpg"
    with pytest.raises(ObjectNotFoundError):
        read_url(str(tmp_path / "missing.jpg"))
    with pytest.raises(ObjectNotFoundError):
        read_url(str(tmp_path))
    with pytest.raises(ForbiddenSourceError):
        read_url("ftp://example.com/x.jpg")  # http(s) sources: tests/product_images/test_sources.py


@pytest.mark.s3
def test_read_url_s3(seaweed: SeaweedServer, s3_store: S3Store) -> None:
    s3_store.client.put_object(Bucket=s3_store.bucket, Key="in//odd key.jpg", Body=b"src")
    client = seaweed.client()
    assert read_url(f"s3://{s3_store.bucket}/in//odd key.jpg", client=client) == b"src"
    with pytest.raises(ObjectNotFoundError) as info:
        read_url(f"s3://{s3_store.bucket}/missing.jpg", client=client)
    assert info.value.key == f"s3://{s3_store.bucket}/missing.jpg"
    with pytest.raises(StorageError):
        read_url(f"s3://{s3_store.bucket}/", client=client)


@pytest.mark.s3
def test_seaweed_start_failure_reports_log_tail(tmp_path: Path) -> None:
    server = SeaweedServer(tmp_path / "bad", startup_timeout=20, extra_args=["-no.such.flag"])
    with pytest.raises(SeaweedStartError, match="exited during startup") as info:
        server.start()
    assert "log tail:" in str(info.value)
    assert "no.such.flag" in server.log_path.read_text()
    assert not server.running


def test_head(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    store.put("sku-1/a.jpg", b"12345", content_type="image/jpeg")
    info = store.head("sku-1/a.jpg")
    assert (info.key, info.size) == ("sku-1/a.jpg", 5)
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    if isinstance(store, S3Store):
        assert info.etag == hashlib.md5(b"12345").hexdigest()  # unquoted
    else:
        assert (info.etag, info.metadata) == (None, {})
    with pytest.raises(ObjectNotFoundError):
        store.head("sku-1/missing.jpg")
    with pytest.raises(ObjectNotFoundError):
        store.head("sku-1")  # a "folder" is not an object


def test_list_info_matches_head(store: Store) -> None:
    for key in ("b/2", "a/1", "a/sub/x", "c"):
        store.put(key, key.encode() * 3)
    infos = list(store.list_info("a/"))
    assert [i.key for i in infos] == ["a/1", "a/sub/x"]
    for info in infos:
        head = store.head(info.key)
        assert (info.size, info.etag) == (head.size, head.etag)
        assert abs(info.last_modified - head.last_modified) < timedelta(seconds=1)
    assert [i.key for i in store.list_info()] == ["a/1", "a/sub/x", "b/2", "c"]


def test_put_if_absent(store: Store) -> None:
    assert store.put_if_absent("claims/k", b"first", "application/json")
    assert not store.put_if_absent("claims/k", b"second")
    assert store.get("claims/k") == b"first"
    assert list(store.list()) == ["claims/k"]  # no temporary file left behind


def test_put_if_absent_has_one_winner(store: Store) -> None:
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda n: store.put_if_absent("race", str(n).encode()), range(8)))
    assert wins.count(True) == 1
    assert store.get("race") == str(wins.index(True)).encode()


@pytest.mark.s3
def test_s3_head_reads_metadata(s3_store: S3Store) -> None:
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key="in/p.jpg", Body=b"x", Metadata={"sku": "S-1"}
    )
    assert s3_store.head("in/p.jpg").metadata == {"sku": "S-1"}
    assert next(s3_store.list_info("in/")).metadata == {}  # listings carry none


class _MinimalStore(Store):
    """Only the abstract methods: what the defaults of the base class build on."""

    url = "memory://"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise ObjectNotFoundError(key)
        return self.objects[key]

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = data

    def exists(self, key: str) -> bool:
        return key in self.objects

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))

    def link(self, key: str, expires_in: int = 3600) -> str:
        return f"memory://{key}"


def test_base_store_defaults() -> None:
    store = _MinimalStore()
    assert store.put_if_absent("k", b"1")
    assert not store.put_if_absent("k", b"2")
    assert store.get("k") == b"1"
    with pytest.raises(NotImplementedError, match="_MinimalStore"):
        store.head("k")
