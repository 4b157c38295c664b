"""Tests for product_images.imaging.loading: every fixture is generated in memory."""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from product_images.errors import (
    CorruptImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    SourceError,
    UnsupportedImageError,
)
from product_images.imaging.loading import SourceImage, decode_source, read_header

MAX_PIXELS = 50_000_000
SAMPLE_CMYK = (
    Path(__file__).resolve().parents[4]
    / "shared/testdata/products/images/a36_watch-cmyk_magento-derived.jpg"
)


# ------------------------------------------------------------------------------------------
# helpers


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def decode(data: bytes, source: str = "photo.jpg", **limits: int) -> SourceImage:
    limits.setdefault("max_pixels", MAX_PIXELS)
    limits.setdefault("min_side", 1)
    return decode_source(data, source, **limits)


def pixel(result: SourceImage, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    value = result.image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A minimal PNG: lets us write 16-bit RGB and headers that lie about the size."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def noisy_jpeg(size: int = 64) -> bytes:
    rng = np.random.default_rng(1)
    return encode(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), "JPEG")


def srgb_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def swapped_rg_profile() -> bytes:
    """LittleCMS's sRGB profile with the red and green primaries swapped: pure red in it is
    pure sRGB green, so a correct conversion visibly swaps the channels."""
    data = bytearray(srgb_bytes())
    (count,) = struct.unpack(">I", data[128:132])
    where = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    r, g = where[b"rXYZ"], where[b"gXYZ"]
    data[r + 4 : r + 12], data[g + 4 : g + 12] = data[g + 4 : g + 12], data[r + 4 : r + 12]
    data[84:100] = bytes(16)  # profile ID (MD5) no longer matches; zero means "not computed"
    return bytes(data)


def cyan_is_red_cmyk_profile() -> bytes:
    """A tiny CMYK printer profile (lut8, Lab PCS) that maps pure cyan ink to sRGB red and
    everything else like the naive formula: proves the embedded profile was used."""
    lab = {
        "white": (100, 0, 0), "black": (0, 0, 0), "red": (54.29, 80.80, 69.89),
        "green": (87.82, -79.29, 80.99), "blue": (29.57, 68.30, -112.03),
        "magenta": (60.17, 93.55, -60.50), "yellow": (97.61, -15.75, 93.39),
    }  # fmt: skip
    cmy_names = {
        (0, 0, 0): "white", (1, 0, 0): "red", (0, 1, 0): "magenta", (0, 0, 1): "yellow",
        (1, 1, 0): "blue", (1, 0, 1): "green", (0, 1, 1): "red", (1, 1, 1): "black",
    }  # fmt: skip

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    clut = bytearray()
    for c, m, y, k in itertools.product((0, 1), repeat=4):
        ell, a, b = lab["black" if k else cmy_names[(c, m, y)]]
        clut += bytes([round(ell * 255 / 100), round(a + 128), round(b + 128)])
    identity = bytes(range(256))
    matrix = b"".join(s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    a2b0 = b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + matrix + identity * 4 + clut + identity * 3
    name = b"Test CMYK cyan-is-red\0"
    tags = [
        (b"desc", b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(78)),
        (b"cprt", b"text" + bytes(4) + b"none\0"),
        (b"wtpt", b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)),
        (b"A2B0", a2b0),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, tag in tags:
        tag += bytes(-len(tag) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(tag))
        body += tag
    header = (
        struct.pack(">I", offset + len(body)) + b"lcms" + bytes([2, 0x10, 0, 0])
        + b"prtr" + b"CMYK" + b"Lab " + bytes(12) + b"acsp" + bytes(28)
        + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48)
    )  # fmt: skip
    return header + struct.pack(">I", len(tags)) + table + body


def without_app14(jpeg: bytes) -> bytes:
    """Drop the Adobe APP14 marker: the CMYK values are then read as stored (not inverted)."""
    out, i = bytearray(jpeg[:2]), 2
    while jpeg[i + 1] != 0xDA:  # copy segments up to start-of-scan
        (length,) = struct.unpack(">H", jpeg[i + 2 : i + 4])
        if jpeg[i + 1] != 0xEE:
            out += jpeg[i : i + 2 + length]
        i += 2 + length
    return bytes(out + jpeg[i:])


def cmyk_jpeg(cmyk: tuple[int, int, int, int], **options: object) -> bytes:
    return encode(Image.new("CMYK", (16, 16), cmyk), "JPEG", quality=95, **options)


# ------------------------------------------------------------------------------------------
# formats

COLOUR = (200, 100, 50)


@pytest.mark.parametrize(
    ("fmt", "options", "tolerance"),
    [
        ("JPEG", {"quality": 95}, 3),
        ("PNG", {}, 0),
        ("WEBP", {"quality": 90}, 4),
        ("WEBP", {"lossless": True}, 0),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_lzw"}, 0),
        ("GIF", {}, 0),
        ("BMP", {}, 0),
    ],
)
def test_opaque_formats_decode_to_rgb(fmt: str, options: dict[str, object], tolerance: int) -> None:
    result = decode(encode(Image.new("RGB", (32, 24), COLOUR), fmt, **options))
    assert (result.format, result.image.mode, result.image.size) == (fmt, "RGB", (32, 24))
    assert result.has_alpha is False
    assert close(pixel(result, (10, 10)), COLOUR, tolerance)


def test_sha256_is_of_the_raw_bytes() -> None:
    data = encode(Image.new("RGB", (8, 8), COLOUR), "PNG")
    assert decode(data).sha256 == hashlib.sha256(data).hexdigest()


def test_png_bytes_named_jpg_decode_as_png() -> None:
    data = encode(Image.new("RGB", (8, 8), COLOUR), "PNG")
    assert decode(data, "product.jpg").format == "PNG"


def test_16_bit_grey_png_is_scaled_not_clipped() -> None:
    grey = Image.fromarray(np.array([[0, 4096, 32768, 61440]], dtype=np.uint16))
    result = decode(encode(grey, "PNG"))
    assert result.image.mode == "RGB"
    assert [pixel(result, (x, 0))[0] for x in range(4)] == [0, 16, 128, 240]
    assert "16-bit PNG scaled to 8 bits" in result.notes


def test_16_bit_rgb_png_is_scaled() -> None:
    row = b"\x00" + struct.pack(">HHH", 1000, 32768, 65535) * 2  # filter byte + 2 pixels
    result = decode(png_bytes(2, 2, 16, 2, row * 2))
    assert pixel(result) == (3, 128, 255)  # the high byte, like >> 8
    assert "16-bit PNG scaled to 8 bits" in result.notes


def test_grey_l_becomes_rgb() -> None:
    result = decode(encode(Image.new("L", (8, 8), 77), "PNG"))
    assert (result.image.mode, pixel(result)) == ("RGB", (77, 77, 77))


def test_palette_png_with_transparency_becomes_rgba() -> None:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0, 0, 255, 0])
    im.putpixel((3, 3), 1)
    result = decode(encode(im, "PNG", transparency=0))
    assert (result.image.mode, result.has_alpha) == ("RGBA", True)
    assert pixel(result, (0, 0))[3] == 0
    assert pixel(result, (3, 3)) == (0, 255, 0, 255)


def test_palette_png_without_transparency_becomes_rgb() -> None:
    im = Image.new("P", (8, 8), 1)
    im.putpalette([255, 0, 0, 0, 0, 255])
    result = decode(encode(im, "PNG"))
    assert (result.image.mode, pixel(result), result.has_alpha) == ("RGB", (0, 0, 255), False)


def test_la_becomes_rgba() -> None:
    result = decode(encode(Image.new("LA", (8, 8), (90, 128)), "PNG"))
    assert (result.image.mode, pixel(result), result.has_alpha) == ("RGBA", (90, 90, 90, 128), True)


@pytest.mark.parametrize(("fmt", "options"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_rgba_with_real_alpha_stays_rgba(fmt: str, options: dict[str, object]) -> None:
    im = Image.new("RGBA", (8, 8), (10, 20, 30, 255))
    im.putpixel((0, 0), (10, 20, 30, 0))
    result = decode(encode(im, fmt, **options))
    assert (result.image.mode, result.has_alpha) == ("RGBA", True)
    assert pixel(result, (0, 0))[3] == 0
    assert pixel(result, (4, 4)) == (10, 20, 30, 255)


def test_lossy_webp_with_alpha_stays_rgba() -> None:
    result = decode(encode(Image.new("RGBA", (16, 16), (10, 20, 30, 128)), "WEBP", quality=90))
    assert (result.image.mode, result.has_alpha) == ("RGBA", True)
    assert close(pixel(result, (8, 8)), (10, 20, 30, 128), 3)


def test_fully_opaque_alpha_is_dropped() -> None:
    result = decode(encode(Image.new("RGBA", (8, 8), (*COLOUR, 255)), "PNG"))
    assert (result.image.mode, result.has_alpha) == ("RGB", False)
    assert "alpha channel fully opaque: dropped" in result.notes


@pytest.mark.parametrize(
    ("fmt", "note"),
    [
        ("GIF", "animated GIF: used frame 1 of 3"),
        ("PNG", "animated PNG: used frame 1 of 3"),
        ("WEBP", "animated WebP: used frame 1 of 3"),
    ],
)
def test_animations_use_the_first_frame(fmt: str, note: str) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], lossless=True)
    result = decode(data)
    assert (result.format, pixel(result)) == (fmt, (255, 0, 0))
    assert note in result.notes


def test_multi_picture_jpeg_is_reported_as_jpeg() -> None:
    first, second = Image.new("RGB", (16, 16), "red"), Image.new("RGB", (16, 16), "blue")
    result = decode(encode(first, "MPO", save_all=True, append_images=[second]))
    assert result.format == "JPEG"
    assert "multi-picture JPEG (MPO): used image 1 of 2" in result.notes
    assert close(pixel(result), (255, 0, 0), 3)


# ------------------------------------------------------------------------------------------
# orientation


def marked_jpeg(orientation: int) -> bytes:
    """A 40x20 white JPEG with a black block in its stored top-left corner."""
    im = Image.new("RGB", (40, 20), "white")
    im.paste((0, 0, 0), (0, 0, 8, 8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, "JPEG", quality=95, exif=exif)


@pytest.mark.parametrize(
    ("orientation", "size", "marker"),
    [
        (1, (40, 20), (3, 3)),  # top-left, as stored
        (3, (40, 20), (36, 16)),  # rotated 180: bottom-right
        (6, (20, 40), (16, 3)),  # rotated 90 clockwise: top-right
        (8, (20, 40), (3, 36)),  # rotated 90 counter-clockwise: bottom-left
    ],
)
def test_exif_orientation_is_applied(
    orientation: int, size: tuple[int, int], marker: tuple[int, int]
) -> None:
    result = decode(marked_jpeg(orientation))
    assert result.image.size == size
    assert max(pixel(result, marker)) < 40
    width, height = size
    corners = [(3, 3), (width - 4, 3), (3, height - 4), (width - 4, height - 4)]
    assert all(min(pixel(result, c)) > 215 for c in corners if c != marker)
    assert (f"applied EXIF orientation {orientation}" in result.notes) == (orientation != 1)


def test_read_header_reports_size_after_orientation() -> None:
    assert read_header(marked_jpeg(6), "photo.jpg") == ("JPEG", 20, 40)
    assert read_header(marked_jpeg(1), "photo.jpg") == ("JPEG", 40, 20)


# ------------------------------------------------------------------------------------------
# colour


def test_embedded_srgb_profile_round_trips_and_is_noted() -> None:
    data = encode(Image.new("RGB", (8, 8), COLOUR), "PNG", icc_profile=srgb_bytes())
    result = decode(data)
    assert close(pixel(result), COLOUR, 2)
    assert "converted from embedded ICC profile 'sRGB built-in' to sRGB" in result.notes


def test_embedded_non_srgb_profile_changes_pixels() -> None:
    im = Image.new("RGBA", (8, 8), (255, 0, 0, 128))
    result = decode(encode(im, "PNG", icc_profile=swapped_rg_profile()))
    assert close(pixel(result), (0, 255, 0, 128), 2)  # alpha kept untouched


def test_cmyk_jpeg_without_profile_uses_naive_formula() -> None:
    result = decode(cmyk_jpeg((0, 255, 255, 0)))  # no cyan, full magenta and yellow = red
    assert (result.image.mode, result.format) == ("RGB", "JPEG")
    assert close(pixel(result, (8, 8)), (255, 0, 0), 4)
    assert any(n.startswith("CMYK without ICC profile") for n in result.notes)


def test_cmyk_jpeg_without_adobe_marker_is_not_inverted() -> None:
    # Stored plain (non-inverted) values, as writers without the Adobe marker do.
    plain = Image.fromarray(255 - np.asarray(Image.new("CMYK", (16, 16), (0, 255, 255, 0))), "CMYK")
    data = without_app14(encode(plain, "JPEG", quality=95))
    assert "adobe" not in Image.open(io.BytesIO(data)).info
    result = decode(data)
    assert close(pixel(result, (8, 8)), (255, 0, 0), 4)
    assert "CMYK JPEG without Adobe marker: read as non-inverted" in result.notes


def test_cmyk_jpeg_with_profile_uses_it() -> None:
    data = cmyk_jpeg((255, 0, 0, 0), icc_profile=cyan_is_red_cmyk_profile())  # cyan ink
    result = decode(data)
    assert close(pixel(result, (8, 8)), (255, 0, 0), 8)  # the profile says cyan is red
    assert "CMYK converted to sRGB with embedded ICC profile 'Test CMYK cyan-is-red'" in (
        result.notes
    )


def test_cmyk_tiff_is_not_inverted() -> None:
    result = decode(encode(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), "TIFF"))
    assert pixel(result) == (0, 255, 255)


@pytest.mark.skipif(not SAMPLE_CMYK.exists(), reason="shared test data not present")
def test_sample_cmyk_watch_matches_opencv() -> None:
    cv2 = pytest.importorskip("cv2")
    data = SAMPLE_CMYK.read_bytes()
    result = decode(data, SAMPLE_CMYK.name)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert result.image.mode == "RGB"
    assert np.abs(np.asarray(result.image, dtype=int) - reference).mean() < 2


# ------------------------------------------------------------------------------------------
# refusals

HTML = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64)


@pytest.mark.parametrize(
    ("data", "error", "detail"),
    [
        pytest.param(b"", CorruptImageError, "empty", id="empty"),
        pytest.param(noisy_jpeg()[:1500], CorruptImageError, "truncated", id="truncated-jpeg"),
        pytest.param(noisy_jpeg()[:-2], CorruptImageError, "truncated", id="jpeg-without-eoi"),
        pytest.param(noisy_jpeg()[:12], CorruptImageError, "looks like JPEG", id="jpeg-header"),
        pytest.param(
            encode(Image.new("RGB", (64, 64), COLOUR), "PNG")[:60],
            CorruptImageError,
            "truncated",
            id="truncated-png",
        ),
        pytest.param(
            encode(Image.new("RGB", (64, 64), COLOUR), "WEBP")[:-10],
            CorruptImageError,
            "looks like WEBP",
            id="truncated-webp",
        ),
        pytest.param(
            np.random.default_rng(2).bytes(4096),
            UnsupportedImageError,
            "not a supported image format",
            id="random-bytes",
        ),
        pytest.param(HTML, UnsupportedImageError, "looks like an HTML page", id="html"),
        pytest.param(SVG, UnsupportedImageError, "SVG is a vector format", id="svg"),
        pytest.param(HEIC, UnsupportedImageError, "HEIC is not supported", id="heic"),
        pytest.param(AVIF, UnsupportedImageError, "AVIF is not supported", id="avif"),
        pytest.param(b"%PDF-1.7\n", UnsupportedImageError, "PDF is not supported", id="pdf"),
    ],
)
def test_bad_sources_raise_typed_errors(data: bytes, error: type[SourceError], detail: str) -> None:
    with pytest.raises(error) as caught:
        decode(data, "sku-42/front.jpg")
    assert type(caught.value) is error
    assert str(caught.value).startswith("sku-42/front.jpg: ")
    assert detail in caught.value.detail


def test_read_header_refuses_like_decode() -> None:
    with pytest.raises(UnsupportedImageError, match=r"^page\.jpg: looks like an HTML page"):
        read_header(HTML, "page.jpg")


def test_bomb_header_is_refused_before_decoding() -> None:
    bomb = png_bytes(100_000, 100_000, 8, 2, b"\x00")  # ~100 bytes claiming 30 GB of pixels
    assert read_header(bomb, "bomb.png") == ("PNG", 100_000, 100_000)
    with pytest.raises(ImageTooLargeError) as caught:
        decode(bomb, "bomb.png", max_pixels=100_000_000)
    assert type(caught.value) is ImageTooLargeError
    assert str(caught.value).startswith("bomb.png: image is 100000x100000")
    assert "100,000,000" in caught.value.detail


def test_image_over_the_configured_limit_is_refused() -> None:
    data = encode(Image.new("RGB", (2000, 2000), COLOUR), "PNG")
    with pytest.raises(ImageTooLargeError, match=r"^big\.png: image is 2000x2000"):
        decode(data, "big.png", max_pixels=1_000_000)
    assert decode(data, "big.png", max_pixels=4_000_000).image.size == (2000, 2000)


def test_image_under_the_minimum_side_is_refused() -> None:
    data = encode(Image.new("RGB", (1, 1), COLOUR), "PNG")
    with pytest.raises(ImageTooSmallError) as caught:
        decode(data, "tiny.png", min_side=100)
    assert type(caught.value) is ImageTooSmallError
    assert str(caught.value).startswith("tiny.png: image is 1x1")


def test_pillow_globals_are_left_alone() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    decode(encode(Image.new("RGB", (8, 8), COLOUR), "PNG"))
    with pytest.raises(ImageTooLargeError):
        decode(png_bytes(100_000, 100_000, 8, 2, b"\x00"), "bomb.png")
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
