"""Hostile and broken input: every kind ends either made (with a note when loading had to adapt)
or refused with its exact typed error; a catalog mixing them all still makes the good products.

Every input is built here, in code. Products that fail have no manifest (the manifest is the
publish point of a done product): their reason is in the run summary and `_status/<sku>.json`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from product_images.catalog import load_catalog
from product_images.errors import (
    CatalogError,
    CorruptImageError,
    ForbiddenSourceError,
    ImageTooLargeError,
    ImageTooSmallError,
    MissingSourceError,
    SourceError,
    UnsupportedImageError,
)
from product_images.manifest import Manifest
from product_images.pipeline import load_source
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.status import ProductStatus
from product_images.store import LocalStore
from product_images.summary import CatalogSummary
from product_images.testing.fixtures.images import draw_product
from product_images.wiring import wire

PLATFORMS = ["shopify"]
MAX_PIXELS = 200_000  # low, so that a real 640x480 photo is over it
SKU_MESSAGE = (
    "SKU {!r} is not usable as a storage key: use letters, digits, '.', '_' and '-' "
    "(no slashes, no '..', at most 128 characters)"
)


@dataclass(frozen=True)
class Refused:
    """The product fails with exactly this error class; `detail` is a regex of its detail."""

    error: type[SourceError]
    detail: str


@dataclass(frozen=True)
class Made:
    """The product is made; its manifest's source.notes are exactly these."""

    notes: tuple[str, ...]


Source = Callable[[Path], str]  # writes the input into a folder, returns the catalog's `source`


def exact(text: str) -> str:
    return re.escape(text)


# ------------------------------------------------------------------------------------------
# inputs


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (320, 256)) -> Image.Image:
    return draw_product(size=size)[0]


def png_claiming(width: int, height: int) -> bytes:
    """A ~70-byte PNG whose header claims `width` x `height` pixels: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("P", (64, 64)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen size
    return bytes(data)


def png_16_bit() -> bytes:
    rgb16 = np.asarray(photo(), np.uint16) * 257
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb16[..., ::-1]))
    assert ok
    return data.tobytes()


def animated_gif() -> bytes:
    frames = [photo(), photo().rotate(8), photo().rotate(16)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80)


JPEG = encode(photo(), "JPEG", quality=90)
RANDOM = np.random.default_rng(7).bytes(4096)
HTML = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
    b"<body><h1>Not Found</h1><p>The requested URL was not found.</p></body></html>\n"
)
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">'
    b'<rect width="200" height="200" fill="red"/></svg>\n'
)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)


def file(name: str, data: bytes) -> Source:
    def write(folder: Path) -> str:
        (folder / name).write_bytes(data)
        return str(folder / name)

    return write


def literal(source: str) -> Source:
    return lambda folder: source


def missing(name: str) -> Source:
    return lambda folder: str(folder / name)


def directory(name: str) -> Source:
    def write(folder: Path) -> str:
        (folder / name).mkdir()
        return str(folder / name)

    return write


KINDS = [
    pytest.param(
        file("empty.jpg", b""),
        Refused(CorruptImageError, exact("file is empty (0 bytes)")),
        id="zero-byte",
    ),
    pytest.param(
        file("cut.jpg", JPEG[: len(JPEG) // 2]),
        Refused(
            CorruptImageError,
            r"cannot decode JPEG data: image file is truncated \(\d+ bytes not processed\)",
        ),
        id="truncated-jpeg",
    ),
    pytest.param(
        file("cut.png", encode(photo(), "PNG")[:300]),
        Refused(CorruptImageError, exact("cannot decode PNG data: image file is truncated")),
        id="truncated-png",
    ),
    pytest.param(
        file("noise.jpg", RANDOM),
        Refused(
            UnsupportedImageError,
            exact(
                f"not a supported image format (starts with {RANDOM[:8].hex(' ')}); "
                "supported: JPEG, PNG, WebP, TIFF, GIF, BMP"
            ),
        ),
        id="random-bytes",
    ),
    pytest.param(
        file("front.jpg", HTML),
        Refused(
            UnsupportedImageError,
            exact("looks like an HTML page (often an error page saved under an image name)"),
        ),
        id="html-error-page",
    ),
    pytest.param(
        file("bomb.png", png_claiming(100_000, 100_000)),
        Refused(
            ImageTooLargeError,
            exact(
                "image is 100000x100000 = 10,000,000,000 pixels, "
                f"over the limit of {MAX_PIXELS:,} pixels"
            ),
        ),
        id="png-bomb",
    ),
    pytest.param(
        file("bomb.gif", gif_claiming(65_535, 65_535)),
        Refused(
            ImageTooLargeError,
            exact(
                "image is 65535x65535 = 4,294,836,225 pixels, "
                f"over the limit of {MAX_PIXELS:,} pixels"
            ),
        ),
        id="gif-bomb",
    ),
    pytest.param(
        file("dot.png", encode(Image.new("RGB", (1, 1), (200, 0, 0)), "PNG")),
        Refused(
            ImageTooSmallError,
            exact("image is 1x1; the shortest side must be at least 64 pixels"),
        ),
        id="one-pixel",
    ),
    pytest.param(
        file("big.jpg", encode(photo((640, 480)), "JPEG")),
        Refused(
            ImageTooLargeError,
            exact(f"image is 640x480 = 307,200 pixels, over the limit of {MAX_PIXELS:,} pixels"),
        ),
        id="over-pixel-limit",
    ),
    pytest.param(
        file("print.jpg", encode(photo().convert("CMYK"), "JPEG", quality=92)),
        Made(("CMYK without ICC profile: converted with R=255*(1-C)*(1-K) (approximate)",)),
        id="cmyk-without-profile",
    ),
    pytest.param(
        file("deep.png", png_16_bit()),
        Made(("16-bit PNG scaled to 8 bits",)),
        id="png-16-bit",
    ),
    pytest.param(
        file("spin.gif", animated_gif()),
        Made(("animated GIF: used frame 1 of 3",)),
        id="animated-gif",
    ),
    pytest.param(
        file("logo.svg", SVG),
        Refused(UnsupportedImageError, exact("SVG is a vector format; export a PNG or JPEG")),
        id="svg",
    ),
    pytest.param(
        file("phone.heic", HEIC),
        Refused(UnsupportedImageError, exact("HEIC is not supported; convert to JPEG")),
        id="heic-without-decoder",
    ),
    pytest.param(
        file("shot.jpg", encode(photo(), "PNG")),
        Made(("file name ends in .jpg but the content is PNG: decoded as PNG",)),
        id="wrong-extension",
    ),
    pytest.param(
        file("manual.jpg", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"),
        Refused(
            UnsupportedImageError, exact("PDF is not supported; export the page as PNG or JPEG")
        ),
        id="pdf",
    ),
    pytest.param(
        file("notes.png", b"sku,price\nA-1,9.99\n"),
        Refused(UnsupportedImageError, exact("looks like plain text, not an image")),
        id="text-file",
    ),
    pytest.param(
        missing("gone.jpg"),
        Refused(MissingSourceError, exact("no such file or object")),
        id="missing-file",
    ),
    pytest.param(
        directory("folder.jpg"),
        Refused(MissingSourceError, exact("no such file or object")),
        id="directory",
    ),
    pytest.param(
        literal("ftp://example.com/a.jpg"),
        Refused(
            ForbiddenSourceError,
            exact("unsupported URL scheme ftp://; use https://, http://, s3://, file:// or a path"),
        ),
        id="ftp-url",
    ),
    pytest.param(
        literal("http://169.254.169.254/latest/meta-data/"),
        Refused(
            ForbiddenSourceError,
            exact(
                "169.254.169.254 is a link-local "
                "address; set PRODUCT_IMAGES_SOURCE_URL_ALLOW_PRIVATE=true or list its network "
                "in PRODUCT_IMAGES_SOURCE_URL_ALLOWED_NETWORKS to allow it"
            ),
        ),
        id="metadata-service-url",
    ),
    pytest.param(
        literal("photos/a\x00.jpg"),
        Refused(ForbiddenSourceError, exact("the location contains control characters")),
        id="nul-in-path",
    ),
]


def settings_for(store: LocalStore) -> Settings:
    return Settings(store=store.url, master_side=256, max_pixels=MAX_PIXELS, threads=1)


def status_of(store: LocalStore, sku: str) -> ProductStatus:
    return ProductStatus.model_validate_json(store.get(f"_status/{sku}.json"))


def assert_refused(store: LocalStore, sku: str, reason: str, message: str) -> None:
    """Failed with this reason, recorded as such, and nothing of the product written."""
    recorded = status_of(store, sku).result
    assert (recorded.status, recorded.reason, recorded.message) == ("failed", reason, message)
    assert list(store.list(f"{sku}/")) == []


def assert_made(store: LocalStore, sku: str, notes: tuple[str, ...]) -> None:
    manifest = Manifest.model_validate_json(store.get(f"{sku}/manifest.json"))
    assert tuple(manifest.source.notes) == notes
    assert manifest.outputs and all(store.exists(o.key) for o in manifest.outputs)
    assert status_of(store, sku).result.status == "done"


# ------------------------------------------------------------------------------------------
# one product per kind


@pytest.mark.parametrize(("source", "outcome"), KINDS)
def test_each_hostile_source_ends_with_its_exact_outcome(
    tmp_path: Path, source: Source, outcome: Refused | Made
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    store = LocalStore(tmp_path / "out")
    settings = settings_for(store)
    request = ProductRequest(sku="SKU-1", source=source(folder), platforms=PLATFORMS)
    if isinstance(outcome, Refused):
        with pytest.raises(outcome.error) as caught:
            load_source(request, settings)
        assert type(caught.value) is outcome.error
        assert re.fullmatch(outcome.detail, caught.value.detail), caught.value.detail
    result = run_product(request, wire(settings, store))
    if isinstance(outcome, Refused):
        assert (result.status, result.reason) == ("failed", outcome.error.reason)
        assert result.message == str(caught.value)
        assert_refused(store, "SKU-1", outcome.error.reason, result.message)
    else:
        assert result.status == "done", result.message
        assert_made(store, "SKU-1", outcome.notes)


# ------------------------------------------------------------------------------------------
# catalog rows and catalog files


@pytest.mark.parametrize(
    ("row", "label", "message"),
    [
        (",a.jpg", "row-2", "row 2: needs both sku and source"),
        ("B-1,", "B-1", "row 2: needs both sku and source"),
        ("GOOD,other.jpg", "GOOD", "row 2: duplicate SKU 'GOOD'"),
        ("../../etc/passwd,a.jpg", "../../etc/passwd", SKU_MESSAGE.format("../../etc/passwd")),
        ("..,a.jpg", "..", SKU_MESSAGE.format("..")),
        ("a/b,a.jpg", "a/b", SKU_MESSAGE.format("a/b")),
        ("C:\\x,a.jpg", "C:\\x", SKU_MESSAGE.format("C:\\x")),
    ],
    ids=["missing-sku", "missing-source", "duplicate-sku", "traversal", "dot-dot", "slash", "bs"],
)
def test_each_bad_catalog_row_is_rejected_alone(
    tmp_path: Path, row: str, label: str, message: str
) -> None:
    (tmp_path / "c.csv").write_text(f"sku,source\nGOOD,good.jpg\n{row}\nLAST,last.jpg\n")
    catalog = load_catalog(str(tmp_path / "c.csv"), PLATFORMS)
    assert [r.sku for r in catalog.requests] == ["GOOD", "LAST"]
    [rejected] = catalog.rejected
    assert (rejected.sku, rejected.status, rejected.reason) == (label, "failed", "invalid_sku")
    assert rejected.message == message


@pytest.mark.parametrize(
    ("name", "content", "detail"),
    [
        (
            "c.json",
            b'{"products": [{"sku": "A", "source": "a.jpg"},]}',
            "not valid JSON: Expecting value: line 1 column 47 (char 46)",
        ),
        (
            "c.json",
            b'[{"sku": "A",\n  "source": "a.jpg"\n',
            "not valid JSON: Expecting ',' delimiter: line 3 column 1 (char 34)",
        ),
        ("c.json", b"", "not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("c.json", b'{"products": 3}', "expected a list of objects or {'products': [...]}"),
        ("c.json", b'["A", "B"]', "expected a list of objects or {'products': [...]}"),
        ("c.csv", b'sku,source\nA,"a.jpg"x\n', "not valid CSV on line 2: ',' expected after '\"'"),
        (
            "c.csv",
            b'sku,source\nA,a.jpg\nB,"b.jpg\n',
            "not valid CSV on line 3: unexpected end of data",
        ),
        ("c.csv", b"name,price\nx,1\n", "missing column(s) sku, source"),
        ("c.csv", b"", "missing column(s) sku, source"),
        (
            "c.csv",
            b"sku,source\nA,a.jpg\nB,caf\xe9.jpg\n",
            "not UTF-8 text: byte 0xe9 on line 3 (byte offset 24)",
        ),
        ("c.csv", JPEG, "not UTF-8 text: byte 0xff on line 1 (byte offset 0)"),
        (
            "c.csv",
            b"\xef\xbb\xbfsku,source\n\xff.jpg",
            "not UTF-8 text: byte 0xff on line 2 (byte offset 14)",
        ),
    ],
    ids=[
        "json-trailing-comma",
        "json-cut-short",
        "json-empty",
        "json-not-a-list",
        "json-not-objects",
        "csv-stray-quote",
        "csv-open-quote",
        "csv-no-columns",
        "csv-empty",
        "csv-latin-1",
        "jpeg-named-csv",
        "csv-bom-then-latin-1",
    ],
)
def test_unreadable_catalog_names_the_file_and_the_place(
    tmp_path: Path, name: str, content: bytes, detail: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CatalogError) as caught:
        load_catalog(str(tmp_path / name), PLATFORMS)
    assert str(caught.value) == f"{tmp_path / name}: {detail}"


def test_missing_catalog_file_is_a_catalog_error(tmp_path: Path) -> None:
    location = str(tmp_path / "nope.csv")
    with pytest.raises(CatalogError) as caught:
        load_catalog(location, PLATFORMS)
    assert str(caught.value) == f"{location}: cannot read the catalog: no object at {location!r}"


# ------------------------------------------------------------------------------------------
# everything at once


def write_catalog(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["sku", "source"])
        writer.writerows(rows)


def test_a_catalog_of_every_kind_makes_the_good_ones_and_reports_each_bad_one(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    store = LocalStore(tmp_path / "out")
    settings = settings_for(store)
    kinds = {param.id: param.values for param in KINDS}
    good = file("good.jpg", JPEG)(folder)
    rows = [("GOOD-1", good), *((sku, make(folder)) for sku, (make, _) in kinds.items())]
    rows += [("", good), ("GOOD-1", good), ("../../etc/passwd", good), ("GOOD-2", good)]
    write_catalog(tmp_path / "catalog.csv", rows)

    catalog = load_catalog(str(tmp_path / "catalog.csv"), PLATFORMS)
    made = [run_product(request, wire(settings, store)) for request in catalog.requests]
    summary = CatalogSummary(results=catalog.rejected + made)

    by_sku = {r.sku: r for r in made}
    assert by_sku["GOOD-1"].status == by_sku["GOOD-2"].status == "done"
    assert_made(store, "GOOD-1", ())
    for sku, (_, outcome) in kinds.items():
        if isinstance(outcome, Made):
            assert by_sku[sku].status == "done"
            assert_made(store, sku, outcome.notes)
            continue
        result = by_sku[sku]
        assert (result.status, result.reason) == ("failed", outcome.error.reason)
        assert re.fullmatch(rf".+: {outcome.detail}", result.message, re.DOTALL), result.message
        assert_refused(store, sku, outcome.error.reason, result.message)
        assert f"FAILED {sku}: [{result.reason}] {result.message}" in summary.lines()

    first_bad_row = len(kinds) + 2
    row_errors = {(r.sku, r.message) for r in catalog.rejected}
    assert row_errors == {
        (f"row-{first_bad_row}", f"row {first_bad_row}: needs both sku and source"),
        ("GOOD-1", f"row {first_bad_row + 1}: duplicate SKU 'GOOD-1'"),
        ("../../etc/passwd", SKU_MESSAGE.format("../../etc/passwd")),
    }
    n_made = 2 + sum(isinstance(outcome, Made) for _, outcome in kinds.values())
    assert summary.done == n_made
    assert len(summary.failed) == len(rows) - n_made
    assert summary.failure_reasons()["invalid_sku"] == 3
    assert json.loads(store.get("GOOD-2/manifest.json"))["sku"] == "GOOD-2"
