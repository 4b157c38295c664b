"""A store in an S3 bucket (AWS or any S3-compatible server), keys under an optional prefix.

Credentials, region and endpoint come from the standard AWS environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL, profiles...). Error messages name the bucket, key and S3 error code,
never credentials.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from product_images.errors import ObjectNotFoundError, StorageError
from product_images.store.base import ObjectInfo, Store
from product_images.store.local import check_key, check_prefix

__all__ = ["S3Client", "S3Store", "endpoint_from_env", "make_s3_client"]

#: A boto3 S3 client (typed loosely: boto3-stubs[s3] is not a dependency).
S3Client: TypeAlias = Any

#: Error codes that mean "this key holds no object" (HEAD answers carry only the status).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})

#: Error codes of a conditional PutObject whose key is taken (412, or 409 on a race).
TAKEN_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


def endpoint_from_env() -> str | None:
    """AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else None (real AWS)."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if value := os.environ.get(name, "").strip():
            return value
    return None


def make_s3_client(
    endpoint_url: str | None = None,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    max_attempts: int = 3,
) -> S3Client:
    """A boto3 S3 client from the AWS environment; path-style when an endpoint is set."""
    endpoint = endpoint_url or endpoint_from_env()
    session = boto3.session.Session()
    options: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "retries": {"max_attempts": max_attempts, "mode": "standard"},
        "signature_version": "s3v4",
    }
    if endpoint:
        options["s3"] = {"addressing_style": "path"}
    region = session.region_name or ("us-east-1" if endpoint else None)
    return session.client("s3", endpoint_url=endpoint, region_name=region, config=Config(**options))


class S3Store(Store):
    """Objects in `bucket` under `prefix`; every put is one PutObject (atomic in S3)."""

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        if not bucket or "/" in bucket:
            raise StorageError(f"invalid S3 bucket name: {bucket!r}")
        self.bucket = bucket
        self.prefix = check_key(prefix.strip("/")) if prefix.strip("/") else ""
        self.client = client if client is not None else make_s3_client()
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def object_key(self, key: str) -> str:
        """The S3 object key for a store key."""
        return self._join(check_key(key))

    def get(self, key: str) -> bytes:
        return self._get(self.object_key(key), key)

    def get_raw(self, object_key: str) -> bytes:
        """Read any object by its full S3 key, unchecked (for source photos in other buckets)."""
        if not object_key:
            raise StorageError(f"empty S3 object key in {self.url}")
        return self._get(object_key, object_key)

    def _get(self, full: str, key: str) -> bytes:
        with self._errors("GetObject", key):
            response = self.client.get_object(Bucket=self.bucket, Key=full)
            data: bytes = response["Body"].read()
            return data

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        full = self.object_key(key)
        with self._errors("PutObject", key):
            self.client.put_object(
                Bucket=self.bucket, Key=full, Body=data, ContentType=content_type
            )

    def put_if_absent(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        """One PutObject with `If-None-Match: *` (AWS, SeaweedFS, MinIO, moto honour it;
        rclone and s3rver ignore it and overwrite)."""
        full = self.object_key(key)
        try:
            with self._errors("PutObject", key):
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=data,
                    ContentType=content_type,
                    IfNoneMatch="*",
                )
        except StorageError as exc:
            if _error_code(exc.__cause__) in TAKEN_CODES:
                return False
            raise
        return True

    def copy(
        self, source: str, target: str, content_type: str = "application/octet-stream"
    ) -> None:
        """One server-side CopyObject: the bytes never leave the server."""
        full, target_full = self.object_key(source), self.object_key(target)
        with self._errors("CopyObject", source):
            self.client.copy_object(
                Bucket=self.bucket,
                Key=target_full,
                CopySource={"Bucket": self.bucket, "Key": full},
                ContentType=content_type,
                MetadataDirective="REPLACE",
            )

    def head(self, key: str) -> ObjectInfo:
        full = self.object_key(key)
        with self._errors("HeadObject", key):
            response = self.client.head_object(Bucket=self.bucket, Key=full)
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            last_modified=response["LastModified"],
            etag=_unquote_etag(response.get("ETag")),
            metadata=dict(response.get("Metadata") or {}),
        )

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """From the listing itself (one request per 1000 keys); metadata stays empty."""
        full = self._join(check_prefix(prefix))
        skip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors("ListObjectsV2", prefix):
            items = [
                ObjectInfo(
                    key=item["Key"][skip:],
                    size=int(item.get("Size", 0)),
                    last_modified=item["LastModified"],
                    etag=_unquote_etag(item.get("ETag")),
                )
                for item in self._list_items(full)
                if not item["Key"].endswith("/")
            ]
        yield from sorted(items, key=lambda info: info.key)

    def exists(self, key: str) -> bool:
        full = self.object_key(key)
        try:
            with self._errors("HeadObject", key):
                self.client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        full = self.object_key(key)
        try:
            with self._errors("DeleteObject", key):
                self.client.delete_object(Bucket=self.bucket, Key=full)
        except ObjectNotFoundError:
            pass

    def list(self, prefix: str = "") -> Iterator[str]:
        full = self._join(check_prefix(prefix))
        skip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors("ListObjectsV2", prefix):
            keys = [key[skip:] for key in self._list_keys(full) if not key.endswith("/")]
        # S3 lists in UTF-8 byte order, but not every S3-compatible server does.
        yield from sorted(keys)

    def link(self, key: str, expires_in: int = 3600) -> str:
        full = self.object_key(key)
        with self._errors("presign GetObject", key):
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires_in
            )
            return url

    def _join(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_keys(self, full_prefix: str) -> Iterator[str]:
        for item in self._list_items(full_prefix):
            yield item["Key"]

    def _list_items(self, full_prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            yield from page.get("Contents", [])

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn boto failures into ObjectNotFoundError / StorageError without secrets."""
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            if code in NOT_FOUND_CODES:
                raise ObjectNotFoundError(key) from None
            raise StorageError(self._message(action, key, _client_error_code(exc))) from exc
        except (BotoCoreError, Boto3Error) as exc:
            raise StorageError(self._message(action, key, _transport_error(exc))) from exc

    def _message(self, action: str, key: str, reason: str) -> str:
        where = f"s3://{self.bucket}/{self._join(key)}" if key else self.url
        return f"S3 {action} failed for {where}: {reason}"


def _error_code(exc: BaseException | None) -> str:
    """The S3 error code of a ClientError ('' for anything else)."""
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unquote_etag(etag: str | None) -> str | None:
    """S3 sends ETags in double quotes; W/ marks weak ones (not from S3, but harmless)."""
    if not etag:
        return None
    return etag.removeprefix("W/").strip('"') or None


def _client_error_code(exc: ClientError) -> str:
    """'AccessDenied (HTTP 403)': the code is an identifier, safe to log."""
    code = exc.response.get("Error", {}).get("Code", "Unknown")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"{code} (HTTP {status})" if status else str(code)


def _transport_error(exc: BotoCoreError | Boto3Error) -> str:
    """The exception class, plus the endpoint for connection errors (userinfo removed)."""
    name = type(exc).__name__
    endpoint = getattr(exc, "kwargs", {}).get("endpoint_url")
    return f"{name} ({_strip_userinfo(str(endpoint))})" if endpoint else name


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))
