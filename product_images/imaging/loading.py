"""Decode a source product photo into an upright, 8-bit sRGB Pillow image.

Everything downstream (cut-out, layout, encoding) assumes one shape of input: mode "RGB", or
"RGBA" when the source really has transparency, 8 bits per channel, sRGB, upright. This module
is the only place that deals with the variety of real uploads, and it refuses bad ones with the
typed errors from `product_images.errors`, whose messages name the file.

Safety rules:
- The format is decided from the bytes, never from the file name.
- Only the formats in `SUPPORTED_FORMATS` are ever handed to a Pillow decoder, so random bytes
  cannot reach one of Pillow's more obscure plugins.
- Width x height is checked against `max_pixels` from the header, before any pixel is decoded.
  We do not use or change Pillow's global `Image.MAX_IMAGE_PIXELS`; our limit is explicit.
- Truncated data is an error: we never set `ImageFile.LOAD_TRUNCATED_IMAGES` and we force a
  full decode with `load()`.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final
from urllib.parse import urlsplit

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageCms,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from product_images.errors import (
    CorruptImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)

__all__ = [
    "SUPPORTED_FORMATS",
    "SourceImage",
    "decode_source",
    "read_header",
]

# Importing the plugin modules registers them with Pillow; name them so the import is explicit.
_PLUGINS: Final = (
    BmpImagePlugin,
    GifImagePlugin,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

#: Pillow format names we decode. APNG is Pillow's "PNG"; multi-picture JPEGs (MPO, written by
#: many cameras and phones) come from the JPEG plugin and are reported as "JPEG".
SUPPORTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP")

_ORIENTATION_TAG: Final = 0x0112
_SRGB: Final = ImageCms.createProfile("sRGB")

# What Pillow's decoders raise on malformed data (the same list Image.open swallows, plus the
# errors that load() raises). Only ever caught around Pillow calls.
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    zlib.error,
)

# Leading bytes of the formats we support: a file that starts like one of these but that Pillow
# cannot open is corrupt, not unsupported.
_SUPPORTED_MAGIC: Final = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)

# Leading bytes of things people upload that are not images we read, with what to tell them.
_UNSUPPORTED_MAGIC: Final = (
    (b"%PDF-", "PDF is not supported; export the page as PNG or JPEG"),
    (b"%!PS", "PostScript/EPS is not supported; export a PNG or JPEG"),
    (b"8BPS", "Photoshop PSD is not supported; export a PNG or JPEG"),
    (b"\x00\x00\x01\x00", "ICO icon files are not supported; export a PNG"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 is not supported; convert to JPEG"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 is not supported; convert to JPEG"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL is not supported; convert to JPEG"),
    (b"\xff\x0a", "JPEG XL is not supported; convert to JPEG"),
    (b"PK\x03\x04", "looks like a ZIP archive, not an image"),
    (b"\x1f\x8b", "looks like gzip-compressed data, not an image"),
)

# ISO-BMFF ("ftyp" box) brands: HEIF/HEIC from phones, AVIF.
_HEIC_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

# What a file name's extension promises. The bytes decide the decoder; a mismatch (a PNG saved
# as .jpg, a JPEG exported as .heic) is only noted, so someone can fix the file's name.
_EXTENSION_FORMATS: Final = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG",
    ".apng": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF",
    ".bmp": "BMP", ".dib": "BMP", ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF",
}  # fmt: skip

_FRAME_WORDS: Final = {
    "GIF": ("animated GIF", "frame"),
    "PNG": ("animated PNG", "frame"),
    "WEBP": ("animated WebP", "frame"),
    "TIFF": ("multi-page TIFF", "page"),
    "MPO": ("multi-picture JPEG (MPO)", "image"),
}


@dataclass(frozen=True)
class SourceImage:
    """A decoded source photo, normalised for the rest of the pipeline."""

    image: Image.Image  # mode "RGB" or "RGBA" (only with real transparency), 8-bit, sRGB, upright
    format: str  # decoder format, e.g. "JPEG", "PNG"
    sha256: str  # of the raw bytes
    notes: tuple[str, ...]  # what loading did, in order, for the manifest
    has_alpha: bool  # True when a meaningful alpha exists (not all 255)


def decode_source(data: bytes, source: str, *, max_pixels: int, min_side: int) -> SourceImage:
    """Decode `data` (the bytes of the file named `source`) into a `SourceImage`.

    Raises UnsupportedImageError, CorruptImageError, ImageTooLargeError or ImageTooSmallError;
    each message starts with `source`.
    """
    if max_pixels <= 0 or min_side < 0:
        raise ValueError(f"max_pixels must be > 0 and min_side >= 0, got {max_pixels}, {min_side}")
    opened = _open_lazily(data, source)
    # Sizes come from the header; refuse before allocating or decoding anything.
    _check_size(opened.size, source, max_pixels=max_pixels, min_side=min_side)

    fmt = _public_format(opened)
    notes = _extension_notes(source, fmt)
    # Read these before any conversion drops them from `info`.
    icc = opened.info.get("icc_profile") or None
    adobe_jpeg = "adobe" in opened.info

    frame_note = _frame_note(opened, source)
    if frame_note:
        notes.append(frame_note)
    sixteen_bit = _stores_16_bit(opened)  # must be asked before load() empties `tile`
    _decode_fully(opened, source)
    if sixteen_bit:
        notes.append(f"16-bit {fmt} scaled to 8 bits")

    image = _apply_orientation(opened, notes)
    image = _to_8_bit(image, fmt, notes)
    if image.mode == "CMYK":
        image = _cmyk_to_srgb(image, icc, fmt=fmt, adobe_jpeg=adobe_jpeg, notes=notes)
    else:
        image = _to_srgb(image, icc, source, notes)
    image = _drop_opaque_alpha(image, notes)

    return SourceImage(
        image=image,
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        notes=tuple(notes),
        has_alpha=image.mode == "RGBA",
    )


def read_header(data: bytes, source: str) -> tuple[str, int, int]:
    """Return (format, width, height) from the header alone, width/height after EXIF orientation.

    Cheap: no pixel data is decoded, so it is safe to call on a decompression bomb to refuse it.
    A PNG's eXIf chunk stored after the pixel data is not seen here (finding it means decoding).
    """
    opened = _open_lazily(data, source)
    width, height = opened.size
    if _header_orientation(opened) in (5, 6, 7, 8):
        width, height = height, width
    return _public_format(opened), width, height


# --------------------------------------------------------------------------------------------
# Opening and decoding


def _open_lazily(data: bytes, source: str) -> ImageFile.ImageFile:
    """Identify `data` among SUPPORTED_FORMATS and read its header, decoding no pixels.

    This is Image.open restricted to our formats, minus its check against Pillow's global
    MAX_IMAGE_PIXELS: that check raises before we could learn the dimensions for our message,
    and it would refuse images our own (explicit) limit allows. We check `max_pixels` instead.
    """
    if not data:
        raise CorruptImageError(source, "file is empty (0 bytes)")
    prefix = data[:16]
    failure = ""
    for fmt in SUPPORTED_FORMATS:
        factory, accept = Image.OPEN[fmt]
        verdict = accept(prefix) if accept else True
        if isinstance(verdict, str):  # Pillow's way of saying "this is WebP, but no libwebp"
            raise UnsupportedImageError(source, verdict)
        if not verdict:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                return factory(io.BytesIO(data), "")
        except Image.DecompressionBombError as exc:  # GIF frames are checked while opening
            raise ImageTooLargeError(source, f"{fmt} header: {exc}") from exc
        except _DECODE_ERRORS as exc:
            failure = failure or f"{fmt}: {exc}"
    raise _unidentified(data, source, failure)


def _unidentified(data: bytes, source: str, failure: str) -> Exception:
    """The error for bytes that no supported decoder accepted: corrupt or unsupported."""
    looks_like = next((fmt for magic, fmt in _SUPPORTED_MAGIC if data.startswith(magic)), None)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        looks_like = "WEBP"
    if looks_like:
        # e.g. a WebP or a TIFF with its directory at the end, cut short by a failed upload.
        why = f" ({failure})" if failure else ""
        return CorruptImageError(
            source, f"looks like {looks_like} but cannot be opened: truncated or damaged{why}"
        )
    detail = _describe_non_image(data)
    if failure and detail is None:
        detail = f"unreadable image header ({failure})"
    return UnsupportedImageError(source, detail or _generic_unsupported(data))


def _describe_non_image(data: bytes) -> str | None:
    """Say what `data` looks like when we recognise it (HTML, SVG, HEIC...), else None."""
    for magic, detail in _UNSUPPORTED_MAGIC:
        if data.startswith(magic):
            return detail
    if data[4:8] == b"ftyp":
        return _describe_iso_bmff(data)
    if data[:4] == b"RIFF":
        return "a RIFF container that is not WebP (e.g. AVI or WAV), not an image"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "looks like an HTML page (often an error page saved under an image name)"
    if b"<svg" in head:
        return "SVG is a vector format; export a PNG or JPEG"
    if head.startswith(b"<?xml"):
        return "looks like an XML document, not an image"
    if head.startswith((b"{", b"[")):
        return "looks like JSON text, not an image"
    if _is_text(data[:1024]):
        return "looks like plain text, not an image"
    return None


def _describe_iso_bmff(data: bytes) -> str:
    """HEIC, AVIF and MP4/QuickTime share the ISO-BMFF container; tell them apart by brand."""
    box_size = int.from_bytes(data[0:4], "big")
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, min(box_size, 64), 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF is not supported; convert to JPEG or PNG"
    if brands & _HEIC_BRANDS:
        return "HEIC is not supported; convert to JPEG"
    return "looks like an MP4/QuickTime video, not an image"


def _is_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:
            return False
        text = sample[: exc.start].decode("utf-8")  # a character cut by the sample's end
    return bool(text) and all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def _generic_unsupported(data: bytes) -> str:
    return (
        f"not a supported image format (starts with {data[:8].hex(' ')}); "
        "supported: JPEG, PNG, WebP, TIFF, GIF, BMP"
    )


def _check_size(size: tuple[int, int], source: str, *, max_pixels: int, min_side: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            source,
            f"image is {width}x{height} = {width * height:,} pixels, "
            f"over the limit of {max_pixels:,} pixels",
        )
    if min(width, height) < min_side:
        raise ImageTooSmallError(
            source,
            f"image is {width}x{height}; the shortest side must be at least {min_side} pixels",
        )


def _public_format(opened: ImageFile.ImageFile) -> str:
    # An MPO is a JPEG with extra images appended; downstream code only needs to know "JPEG".
    fmt = opened.format or "unknown"
    return "JPEG" if fmt == "MPO" else fmt


def _frame_note(opened: ImageFile.ImageFile, source: str) -> str | None:
    """Note that we use only the first frame/page. Counting frames walks the file, no decode."""
    try:
        n_frames = int(getattr(opened, "n_frames", 1))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(source, str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(source, f"cannot read its frames: {exc}") from exc
    if n_frames <= 1:
        return None
    what, unit = _FRAME_WORDS.get(opened.format or "", (f"multi-frame {opened.format}", "frame"))
    return f"{what}: used {unit} 1 of {n_frames}"


def _decode_fully(opened: ImageFile.ImageFile, source: str) -> None:
    """Decode every pixel of the first frame now, so truncation is an error here, not later."""
    try:
        opened.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened.load()
    except Image.DecompressionBombError as exc:  # TIFF tiles and GIF frames check while loading
        raise ImageTooLargeError(source, str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(source, f"cannot decode {opened.format} data: {exc}") from exc


def _stores_16_bit(opened: ImageFile.ImageFile) -> bool:
    """Whether the file stores 16 bits per sample, judged before decoding.

    16-bit grey opens as mode "I;16"; 16-bit RGB(A) opens as 8-bit "RGB(A)" that Pillow scales
    while decoding, visible only in the raw mode of the not-yet-decoded tiles (e.g. "RGB;16B").
    Tile args differ by plugin (a string or a tuple); missing a case only loses a note.
    """
    if opened.mode.startswith("I;16"):
        return True
    for tile in opened.tile:
        rawmode = tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _extension_notes(source: str, fmt: str) -> list[str]:
    """A note when the name of `source` promises another format than its bytes hold."""
    path = urlsplit(source).path if "://" in source else source
    suffix = PurePosixPath(path).suffix.lower()
    promised = _EXTENSION_FORMATS.get(suffix)
    if promised is None or promised == fmt:
        return []
    return [f"file name ends in {suffix} but the content is {fmt}: decoded as {fmt}"]


# --------------------------------------------------------------------------------------------
# Orientation


def _header_orientation(opened: ImageFile.ImageFile) -> int:
    # PngImageFile.getexif() decodes the whole image to look for an eXIf chunk after IDAT;
    # a header read must not decode, so only trust EXIF already seen in the header.
    if opened.format == "PNG" and "exif" not in opened.info:
        return 1
    try:
        return int(opened.getexif().get(_ORIENTATION_TAG, 1))
    except _DECODE_ERRORS:
        return 1


def _apply_orientation(image: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/flip per EXIF (or XMP) Orientation so the image is upright."""
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        notes.append("EXIF data unreadable: orientation not applied")
        return image
    if orientation == 1:
        return image
    if orientation not in range(2, 9):
        notes.append(f"ignored invalid EXIF orientation {orientation!r}")
        return image
    notes.append(f"applied EXIF orientation {orientation}")
    return ImageOps.exif_transpose(image)


# --------------------------------------------------------------------------------------------
# Bit depth and modes


def _to_8_bit(image: Image.Image, fmt: str, notes: list[str]) -> Image.Image:
    """Bring high-bit-depth single-channel modes to 8-bit "L".

    Pillow's convert() clips I;16 (every value >= 255 becomes white), so scale with numpy.
    16-bit RGB/RGBA/LA are already scaled correctly by Pillow's decoders.
    """
    mode = image.mode
    if mode.startswith("I;16"):
        # Already noted as "16-bit ... scaled" by the caller.
        return Image.fromarray((np.asarray(image) >> 8).astype(np.uint8), "L")
    if mode == "I":
        notes.append(f"32-bit integer {fmt} scaled to 8 bits assuming a 16-bit range")
        values = np.clip(np.asarray(image), 0, 65535) >> 8
        return Image.fromarray(values.astype(np.uint8), "L")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.size and float(values.max()) <= 1.0 else 1.0
        notes.append(f"32-bit float {fmt} scaled to 8 bits")
        return Image.fromarray(np.clip(values * scale + 0.5, 0, 255).astype(np.uint8), "L")
    return image


def _split_alpha(image: Image.Image, source: str) -> tuple[Image.Image, Image.Image | None]:
    """Return (colour part in "L" or "RGB", alpha or None), expanding palette/transparency."""
    mode = image.mode
    if mode in ("P", "L", "RGB", "1") and "transparency" in image.info:
        # Palette tRNS, GIF transparent index, or a PNG colour key: all become an alpha channel.
        image = image.convert("RGBA")
        mode = "RGBA"
    elif mode in ("P", "RGBX", "YCbCr"):
        image = image.convert("RGB")
        mode = "RGB"
    elif mode in ("PA", "RGBa"):
        image = image.convert("RGBA")
        mode = "RGBA"
    elif mode == "La":
        image = image.convert("LA")
        mode = "LA"
    elif mode == "1":
        image = image.convert("L")
        mode = "L"

    if mode in ("L", "RGB"):
        return image, None
    if mode in ("LA", "RGBA"):
        return image.convert(mode[:-1]), image.getchannel("A")
    raise UnsupportedImageError(source, f"pixel mode {mode} is not supported")


def _drop_opaque_alpha(image: Image.Image, notes: list[str]) -> Image.Image:
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        notes.append("alpha channel fully opaque: dropped")
        return image.convert("RGB")
    return image


# --------------------------------------------------------------------------------------------
# Colour


def _read_profile(icc: bytes | None, notes: list[str]) -> ImageCms.ImageCmsProfile | None:
    if not icc:
        return None
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError) as exc:
        notes.append(f"embedded ICC profile unreadable ({exc}): assumed sRGB")
        return None


def _profile_name(profile: ImageCms.ImageCmsProfile) -> str:
    try:
        return ImageCms.getProfileDescription(profile).strip() or "unnamed"
    except ImageCms.PyCMSError:
        return "unnamed"


def _profile_space(profile: ImageCms.ImageCmsProfile) -> str:
    return str(profile.profile.xcolor_space).strip()  # "RGB", "GRAY", "CMYK", ...


def _to_srgb(image: Image.Image, icc: bytes | None, source: str, notes: list[str]) -> Image.Image:
    """Convert L/LA/P/RGB/RGBA (with optional ICC profile) to sRGB "RGB" or "RGBA"."""
    colour, alpha = _split_alpha(image, source)
    profile = _read_profile(icc, notes)
    if profile is not None:
        wanted = "GRAY" if colour.mode == "L" else "RGB"
        space = _profile_space(profile)
        name = _profile_name(profile)
        if space != wanted:
            notes.append(f"ignored embedded {space} ICC profile '{name}' on a {colour.mode} image")
        else:
            # Colour goes through the profile; alpha is carried over untouched.
            colour = _transform(colour, profile)
            notes.append(f"converted from embedded ICC profile '{name}' to sRGB")
    if colour.mode == "L":
        colour = colour.convert("RGB")
    if alpha is None:
        return colour
    colour.putalpha(alpha)
    return colour


def _transform(image: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image:
    # Relative colorimetric with black-point compensation: Photoshop's default for conversions,
    # and what matrix/TRC profiles (Adobe RGB, Display P3) support anyway.
    converted = ImageCms.profileToProfile(
        image,
        profile,
        _SRGB,
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        outputMode="RGB",
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )
    assert converted is not None  # inPlace=False always returns an image
    return converted


def _cmyk_to_srgb(
    image: Image.Image, icc: bytes | None, *, fmt: str, adobe_jpeg: bool, notes: list[str]
) -> Image.Image:
    """Convert CMYK (0 = no ink) to sRGB, through the embedded profile when there is one.

    Pillow reads every CMYK JPEG as Adobe-inverted ("CMYK;I") and hands us 0 = no ink, which
    is right for files with an Adobe APP14 marker (Photoshop, libjpeg). A CMYK JPEG without
    that marker stores plain values, so Pillow's inversion must be undone (as libvips does).
    """
    if fmt == "JPEG" and not adobe_jpeg:
        image = _invert_cmyk(image)
        notes.append("CMYK JPEG without Adobe marker: read as non-inverted")
    profile = _read_profile(icc, notes)
    if profile is not None and _profile_space(profile) == "CMYK":
        notes.append(f"CMYK converted to sRGB with embedded ICC profile '{_profile_name(profile)}'")
        return _transform(image, profile)
    if profile is not None:
        notes.append(f"ignored embedded {_profile_space(profile)} ICC profile on a CMYK image")
    # No usable profile and LittleCMS has no built-in CMYK one: the naive device formula.
    cmyk = np.asarray(image, dtype=np.float64) / 255.0
    rgb = 255.0 * (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:4])
    notes.append("CMYK without ICC profile: converted with R=255*(1-C)*(1-K) (approximate)")
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")


def _invert_cmyk(image: Image.Image) -> Image.Image:
    # ImageOps.invert does not accept CMYK; numpy does it in one step.
    return Image.fromarray(255 - np.asarray(image), "CMYK")
