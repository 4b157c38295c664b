"""One exception tree for the whole project.

    ProductImagesError
    ├── ProductError               the product cannot be made; the batch goes on
    │   ├── SourceError            the source photo is unusable (names the file)
    │   │   ├── MissingSourceError       no file or object at the source location
    │   │   ├── UnsupportedImageError    not an image format we read (SVG, HEIC, HTML...)
    │   │   ├── CorruptImageError        truncated, empty or undecodable
    │   │   ├── ImageTooLargeError       over the pixel limit (decompression bomb guard)
    │   │   ├── ImageTooSmallError       under the minimum side length
    │   │   └── NoProductFoundError      the cut-out found nothing that stands out
    │   ├── InvalidSkuError        a SKU that is not safe as a storage key
    │   └── RenderError            a slot cannot be produced within its rules
    ├── CatalogError               the catalog file itself cannot be read
    ├── SpecError                  a platform spec file is invalid (names file and field)
    │   └── UnknownPlatformError   no spec file for that platform or slot
    ├── SettingsError              a setting is invalid
    └── StorageError               the store failed (outage, permissions)
        └── ObjectNotFoundError    the key does not exist

`ProductError` is what a flow records against one product; everything else stops the run
because it concerns the run itself (its catalog, specs, settings or store).
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CorruptImageError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidSkuError",
    "MissingSourceError",
    "NoProductFoundError",
    "ObjectNotFoundError",
    "ProductError",
    "ProductImagesError",
    "RenderError",
    "SettingsError",
    "SourceError",
    "SpecError",
    "StorageError",
    "UnknownPlatformError",
    "UnsupportedImageError",
]


class ProductImagesError(Exception):
    """Base class of every error this project raises on purpose."""

    #: A short machine-readable reason, recorded in manifests and summaries.
    reason = "error"


class ProductError(ProductImagesError):
    """One product cannot be made; other products are unaffected."""

    reason = "product_error"


class SourceError(ProductError):
    """The source photo is unusable. The message names the file."""

    reason = "bad_source"

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail


class MissingSourceError(SourceError):
    """Nothing exists at the source path or URL."""

    reason = "source_missing"


class UnsupportedImageError(SourceError):
    """The bytes are not an image format we can read."""

    reason = "unsupported_image"


class CorruptImageError(SourceError):
    """The file is empty, truncated or cannot be decoded."""

    reason = "corrupt_image"


class ImageTooLargeError(SourceError):
    """The image has more pixels than the configured limit."""

    reason = "image_too_large"


class ImageTooSmallError(SourceError):
    """The image is smaller than the configured minimum side."""

    reason = "image_too_small"


class NoProductFoundError(SourceError):
    """Nothing in the photo stands out from its background; no cut-out to build on."""

    reason = "no_product_found"


class InvalidSkuError(ProductError):
    """The SKU cannot be used as a storage key (slashes, '..', control characters)."""

    reason = "invalid_sku"


class RenderError(ProductError):
    """A slot cannot be rendered within its rules (e.g. its byte budget)."""

    reason = "render_failed"


class CatalogError(ProductImagesError):
    """The catalog file cannot be read as CSV or JSON, or lacks required columns."""

    reason = "bad_catalog"


class SpecError(ProductImagesError):
    """A platform spec file is invalid; the message names the file and the field."""

    reason = "bad_spec"


class UnknownPlatformError(SpecError):
    """No spec file defines the requested platform or slot."""

    reason = "unknown_platform"


class SettingsError(ProductImagesError):
    """A setting has an invalid value."""

    reason = "bad_settings"


class StorageError(ProductImagesError):
    """The store failed to read or write."""

    reason = "storage"


class ObjectNotFoundError(StorageError):
    """The requested key does not exist in the store."""

    reason = "not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"no object at {key!r}")
        self.key = key
