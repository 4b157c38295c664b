"""Tests for the demo helpers: the drawn sample catalog and the HTML contact sheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from product_images.demo import SAMPLE_KINDS, make_sample_catalog, write_contact_sheet
from product_images.imaging.segment import segment_product
from product_images.manifest import (
    CheckResult,
    Manifest,
    MasterRecord,
    OutputRecord,
    ReviewFlag,
    SourceInfo,
)
from product_images.settings import Settings
from product_images.store import Store, open_store

ORIENTATION = 0x0112


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_sample_catalog_has_count_rows_of_decodable_photos(tmp_path: Path) -> None:
    csv_path = make_sample_catalog(tmp_path, count=8, seed=7)

    rows = _rows(csv_path)
    assert csv_path == tmp_path / "catalog.csv"
    assert len(rows) == 8
    assert list(rows[0]) == ["sku", "source", "name", "category"]
    assert len({r["sku"] for r in rows}) == 8
    assert [r["sku"].split("-", 2)[2] for r in rows] == list(SAMPLE_KINDS)
    for row in rows:
        assert not Path(row["source"]).is_absolute()  # relative to the catalog's folder
        assert row["name"] and row["category"]
        with Image.open(tmp_path / row["source"]) as image:
            image.load()
            assert 900 <= max(image.size) <= 1600


def test_sample_catalog_has_one_cutout_png_and_one_exif_rotated_jpeg(tmp_path: Path) -> None:
    rows = _rows(make_sample_catalog(tmp_path))
    formats: dict[str, list[str]] = {}
    for row in rows:
        with Image.open(tmp_path / row["source"]) as image:
            image.load()
            orientation = image.getexif().get(ORIENTATION, 1)
            kind = f"{image.format}/{image.mode}/orientation={orientation}"
            formats.setdefault(kind, []).append(row["sku"])
            if image.mode == "RGBA":
                alpha = np.asarray(image.getchannel("A"))
                # A real cut-out: transparent surroundings, an opaque product, soft edges.
                assert alpha.min() == 0 and alpha.max() == 255
                assert 0.05 < (alpha > 128).mean() < 0.6
            if orientation == 6:
                upright = ImageOps.exif_transpose(image)
                assert upright.size == (image.height, image.width)
                assert upright.height > upright.width  # stored on its side, upright is portrait

    assert len(formats.pop("PNG/RGBA/orientation=1")) == 1
    assert len(formats.pop("JPEG/RGB/orientation=6")) == 1
    assert set(formats) == {"JPEG/RGB/orientation=1"}
    assert len(formats["JPEG/RGB/orientation=1"]) == 6


def test_sample_catalog_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = _folder_bytes(make_sample_catalog(tmp_path / "a", seed=3).parent)
    again = _folder_bytes(make_sample_catalog(tmp_path / "b", seed=3).parent)
    other = _folder_bytes(make_sample_catalog(tmp_path / "c", seed=4).parent)

    assert first == again
    assert first.keys() == other.keys()
    assert first["catalog.csv"] == other["catalog.csv"]
    assert any(first[name] != other[name] for name in first if name != "catalog.csv")


def test_sample_catalog_count_repeats_kinds_with_unique_skus(tmp_path: Path) -> None:
    assert len(_rows(make_sample_catalog(tmp_path / "three", count=3))) == 3
    rows = _rows(make_sample_catalog(tmp_path / "ten", count=10))
    assert len({r["sku"] for r in rows}) == 10
    assert rows[8]["sku"].endswith(SAMPLE_KINDS[0])


def test_hard_sample_is_found_but_not_trusted(tmp_path: Path) -> None:
    """The busy-background sample exists to end in needs_review, not in a clean pass."""
    rows = _rows(make_sample_catalog(tmp_path))
    [hard] = [r for r in rows if r["sku"].endswith("headphones")]
    with Image.open(tmp_path / hard["source"]) as image:
        cutout = segment_product(image.convert("RGB"))

    assert cutout.alpha.any()  # found, so the product gets a manifest to review
    assert cutout.confidence < Settings().imaging.review_threshold
    assert cutout.reasons


# --------------------------------------------------------------------------- contact sheet


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (12, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(size: tuple[int, int] = (16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def _manifest(store: Store, sku: str, source: Path, review: bool = False) -> Manifest:
    """A hand-built manifest whose images really exist in `store`."""
    white, main, gallery = f"{sku}/masters/white.png", f"{sku}/amazon/main.jpg", f"{sku}/etsy/1.png"
    store.put(white, _png((255, 255, 255)))
    store.put(main, _jpeg())
    store.put(gallery, _png((20, 90, 200)))
    source.write_bytes(_jpeg((30, 20)))
    passed = CheckResult(rule="background_white", passed=True, measured="255", expected=">= 250")
    failed = CheckResult(rule="min_side", passed=False, measured="16 px", expected=">= 1000 px")
    return Manifest(
        sku=sku,
        backend="local",
        code_version="test",
        source=SourceInfo(
            key=str(source),
            sha256="0" * 64,
            width=30,
            height=20,
            format="JPEG",
            notes=["applied EXIF orientation 6"],
        ),
        masters=[
            MasterRecord(
                variant="white",
                key=white,
                width=12,
                height=8,
                sha256="1" * 64,
                backend="local",
                confidence=0.9,
                product_box=(1, 1, 11, 7),
            )
        ],
        outputs=[
            OutputRecord(
                platform="amazon",
                slot="main",
                variant="white",
                key=main,
                width=16,
                height=16,
                format="jpeg",
                bytes=700,
                sha256="2" * 64,
                checks=[passed, failed],
            ),
            OutputRecord(
                platform="etsy",
                slot="1",
                variant="white",
                key=gallery,
                width=12,
                height=8,
                format="png",
                bytes=90,
                sha256="3" * 64,
                checks=[passed],
            ),
        ],
        needs_review=[ReviewFlag(step="cutout", reason="cluttered <background>", confidence=0.3)]
        if review
        else [],
    )


def test_contact_sheet_shows_every_product_output_and_check(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "out"))
    manifests = [
        _manifest(store, "SKU-1", tmp_path / "one.jpg"),
        _manifest(store, "SKU-2", tmp_path / "two.jpg", review=True),
    ]

    path = write_contact_sheet(store, manifests, tmp_path / "sheet" / "index.html")

    assert path == tmp_path / "sheet" / "index.html"
    page = path.read_text(encoding="utf-8")
    for manifest in manifests:
        assert manifest.sku in page
        keys = [o.key for o in manifest.outputs] + [m.key for m in manifest.masters]
        for key in keys:
            # Relative to the page, so the folder can be moved or zipped as one.
            assert f'src="../out/{key}"' in page
            assert (path.parent / "../out" / key).resolve().is_file()
    assert page.count(">PASS background_white<") == 4
    assert page.count(">FAIL min_side<") == 2
    assert "measured 16 px; expected &gt;= 1000 px" in page  # hover text
    assert page.count("needs review</strong>") == 1
    assert "cluttered &lt;background&gt;" in page
    assert "applied EXIF orientation 6" in page
    assert 'loading="lazy"' in page
    thumbnails = sorted((path.parent / "sources").iterdir())
    assert len(thumbnails) == 2
    for thumbnail in thumbnails:
        assert f'src="sources/{thumbnail.name}"' in page
        with Image.open(thumbnail) as image:
            assert image.size == (30, 20)


def test_contact_sheet_escapes_text(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "out"))
    hostile = "<script>alert('x')</script>"
    manifest = _manifest(store, "evil", tmp_path / "evil.jpg")
    manifest = manifest.model_copy(update={"sku": hostile})

    page = write_contact_sheet(
        store, [manifest], tmp_path / "index.html", title="<b>demo</b>"
    ).read_text(encoding="utf-8")

    assert "<script" not in page
    assert "<b>demo</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;demo&lt;/b&gt;" in page
    # The source thumbnail's file name is made safe too: no '/' or '<' from the SKU.
    [thumbnail] = (tmp_path / "sources").iterdir()
    assert "<" not in thumbnail.name and thumbnail.parent == tmp_path / "sources"


class _RemoteStore(Store):
    """A store whose links are web URLs (like presigned S3 links)."""

    url = "memory://test"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
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
        return f"https://cdn.example.com/{key}?sig=a&exp={expires_in}"


def test_contact_sheet_uses_links_of_remote_stores_as_they_are(tmp_path: Path) -> None:
    store = _RemoteStore()
    manifest = _manifest(store, "SKU-9", tmp_path / "missing-later.jpg")
    (tmp_path / "missing-later.jpg").unlink()  # an unreadable source must not break the page

    page = write_contact_sheet(store, [manifest], tmp_path / "index.html").read_text("utf-8")

    assert 'src="https://cdn.example.com/SKU-9/amazon/main.jpg?sig=a&amp;exp=3600"' in page
    assert "source not readable" in page
