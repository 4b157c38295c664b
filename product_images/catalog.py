"""Catalogs: a CSV or JSON file of rows (at least `sku` and `source`), or a folder/prefix of photos.

Bad rows do not stop the catalog: each becomes a failed result with its reason.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from product_images.errors import CatalogError, InvalidSkuError, SourceError, StorageError
from product_images.manifest import ProductResult
from product_images.request import ProductRequest, check_sku
from product_images.runner import failed_result
from product_images.store import open_store, read_url

__all__ = ["IMAGE_SUFFIXES", "Catalog", "load_catalog"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp")


@dataclass
class Catalog:
    """The products to make, and the rows refused before any work."""

    requests: list[ProductRequest] = field(default_factory=list)
    rejected: list[ProductResult] = field(default_factory=list)


_ROW_FIELDS = ("name", "category", "brand_style", "scene_hint", "tag")


def load_catalog(location: str, platforms: list[str], **common: Any) -> Catalog:
    """Read a catalog file, a local folder of photos, or an s3:// prefix of photos."""
    if location.startswith("s3://") and not location.lower().endswith((".csv", ".json")):
        return _from_prefix(location, platforms, common)
    if not location.startswith("s3://") and Path(location).is_dir():
        return _from_folder(Path(location), platforms, common)
    text = _read_text(location)
    rows = (
        _parse_json(location, text)
        if location.lower().endswith(".json")
        else _parse_csv(location, text)
    )
    return _requests(rows, _base_of(location), platforms, common)


def _read_text(location: str) -> str:
    try:
        data = read_url(location)
    except (StorageError, SourceError) as exc:
        raise CatalogError(f"{location}: cannot read the catalog: {exc}") from exc
    body = data.removeprefix(codecs.BOM_UTF8)  # Excel writes one
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        offset = exc.start + len(data) - len(body)
        raise CatalogError(
            f"{location}: not UTF-8 text: byte 0x{body[exc.start]:02x} on line {line} "
            f"(byte offset {offset})"
        ) from exc


def _base_of(location: str) -> str:
    if "://" in location:  # s3://, https://: sources are relative to the catalog's "folder"
        return posixpath.dirname(location)
    return str(Path(location).resolve().parent)


def _parse_csv(location: str, text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text), strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise CatalogError(
            f"{location}: not valid CSV on line {reader.reader.line_num}: {exc}"
        ) from exc
    missing = {"sku", "source"} - set(reader.fieldnames or [])
    if missing:
        raise CatalogError(f"{location}: missing column(s) {', '.join(sorted(missing))}")
    return rows


def _parse_json(location: str, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{location}: not valid JSON: {exc}") from exc
    rows = data.get("products") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CatalogError(f"{location}: expected a list of objects or {{'products': [...]}}")
    return rows


def _resolve(source: str, base: str) -> str:
    # Any URL is kept as written: reading it refuses what is not allowed, as that product's error.
    if source.startswith("/") or "://" in source:
        return source
    return posixpath.join(base, source) if "://" in base else str(Path(base) / source)


def _row_platforms(row: dict[str, Any], default: list[str]) -> list[str]:
    value = row.get("platforms") or ""
    items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
    chosen = [str(p).strip() for p in items if str(p).strip()]
    return chosen or default


def _row_backend(row: dict[str, Any]) -> str | None:
    value = str(row.get("backend") or "").strip().lower()
    return value or None


def _requests(
    rows: list[dict[str, Any]], base: str, platforms: list[str], common: dict[str, Any]
) -> Catalog:
    """Requests from rows; `common` (run_id, budget_usd, tag, backend) applies to all of them."""
    catalog, seen = Catalog(), set()
    for number, row in enumerate(rows, start=1):
        sku = str(row.get("sku") or "").strip()
        source = str(row.get("source") or "").strip()
        label = sku or f"row-{number}"
        try:
            if not sku or not source:
                raise InvalidSkuError(f"row {number}: needs both sku and source")
            if sku in seen:
                raise InvalidSkuError(f"row {number}: duplicate SKU {sku!r}")
            seen.add(check_sku(sku))
        except InvalidSkuError as error:
            catalog.rejected.append(failed_result(label, error))
            continue
        fields = {k: str(row.get(k) or "") for k in _ROW_FIELDS}
        extra = {**common, **{k: v for k, v in fields.items() if v}}
        if _row_backend(row):
            extra["backend"] = _row_backend(row)
        try:
            request = ProductRequest(
                sku=sku,
                source=_resolve(source, base),
                platforms=_row_platforms(row, platforms),
                **extra,
            )
        except ValidationError as error:
            catalog.rejected.append(
                failed_result(label, InvalidSkuError(f"row {number}: {error.errors()[0]['msg']}"))
            )
            continue
        catalog.requests.append(request)
    return catalog


def _from_folder(folder: Path, platforms: list[str], common: dict[str, Any]) -> Catalog:
    rows = [
        {"sku": p.stem, "source": str(p)}
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    return _requests(rows, str(folder), platforms, common)


def _from_prefix(url: str, platforms: list[str], common: dict[str, Any]) -> Catalog:
    store = open_store(url)
    rows = [
        {"sku": posixpath.splitext(posixpath.basename(k))[0], "source": f"{url.rstrip('/')}/{k}"}
        for k in store.list("")
        if k.lower().endswith(IMAGE_SUFFIXES)
    ]
    return _requests(rows, url, platforms, common)
