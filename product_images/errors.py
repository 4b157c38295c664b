"""One exception tree for the whole project.

    ProductImagesError
    ├── ProductError               the product cannot be made; the batch goes on
    │   ├── SourceError            the source photo is unusable (names the file)
    │   │   ├── MissingSourceError       no file or object at the source location
    │   │   ├── UnsupportedImageError    not an image format we read (SVG, HEIC, HTML...)
    │   │   ├── CorruptImageError        truncated, empty or undecodable
    │   │   ├── ImageTooLargeError       over the pixel limit (decompression bomb guard)
    │   │   ├── ImageTooSmallError       under the minimum side length
    │   │   ├── NoProductFoundError      the cut-out found nothing that stands out
    │   │   ├── ForbiddenSourceError     a source URL we refuse to fetch (scheme, address)
    │   │   └── SourceFetchError         an http(s) source could not be downloaded
    │   │       └── SourceTooLargeError  the download is over the size limit
    │   ├── InvalidSkuError        a SKU that is not safe as a storage key
    │   ├── RenderError            a slot cannot be produced within its rules
    │   ├── StorageUnavailableError  the store failed during this product (deferred: rerun it)
    │   ├── BudgetExceededError    the next paid call could pass the run's budget (skipped)
    │   └── GenerationError        a generative backend did not give a usable image
    │       ├── RetryableGenerationError     worth trying again later
    │       │   ├── RateLimitedError         429 RESOURCE_EXHAUSTED (may carry retry_after)
    │       │   ├── UpstreamServerError      500 / 502 / 503 / 504
    │       │   ├── GenerationTimeoutError   no answer in time
    │       │   ├── NoImageError             an answer without an image, or unreadable JSON
    │       │   ├── BackendUnavailableError  the backend's circuit breaker is open: the
    │       │   │                            product is deferred, retried after the cool-down
    │       │   ├── LimitsUnavailableError   the Prefect server holding the shared limits did
    │       │   │                            not answer: no call made, the product deferred
    │       │   └── BatchJobError            a batch job failed, was cancelled, expired or timed
    │       │                                out: send its requests synchronously instead
    │       └── PermanentGenerationError     the same request will fail again
    │           ├── ContentBlockedError      a safety block (finishReason / blockReason)
    │           ├── BadRequestError          400: the request or a setting is wrong
    │           ├── AuthenticationError      401 / 403: key missing, invalid or not allowed
    │           └── ModelNotFoundError       404: the model id is wrong or shut down
    ├── CatalogError               the catalog file itself cannot be read
    ├── SpecError                  a data file (platform or segmenter spec) is invalid (names
    │   │                          file and field)
    │   └── UnknownPlatformError   no spec file for that platform or slot
    ├── ModelFileError             a segmentation model is missing, corrupt or cannot be fetched
    ├── SettingsError              a setting is invalid
    │   ├── ModelCatalogError      a model catalogue file is invalid (names file and field)
    │   └── ModelRetiredError      the configured model is shut down (names the ids to use)
    └── StorageError               the store failed (outage, permissions)
        └── ObjectNotFoundError    the key does not exist

`ProductError` is what a flow records against one product; everything else stops the run
because it concerns the run itself (its catalog, specs, settings or store). A product whose
generation ended on a RetryableGenerationError (retries used up, or the breaker open) is
reported "deferred", not failed: a later try, in the same run or with `retry`, can make it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "AuthenticationError",
    "BackendUnavailableError",
    "BadRequestError",
    "BatchJobError",
    "BudgetExceededError",
    "CatalogError",
    "ContentBlockedError",
    "CorruptImageError",
    "ForbiddenSourceError",
    "GenerationError",
    "GenerationTimeoutError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidSkuError",
    "LimitsUnavailableError",
    "MissingSourceError",
    "ModelCatalogError",
    "ModelFileError",
    "ModelNotFoundError",
    "ModelRetiredError",
    "NoImageError",
    "NoProductFoundError",
    "ObjectNotFoundError",
    "PermanentGenerationError",
    "ProductError",
    "ProductImagesError",
    "RateLimitedError",
    "RenderError",
    "RetryableGenerationError",
    "SettingsError",
    "SourceError",
    "SourceFetchError",
    "SourceTooLargeError",
    "SpecError",
    "StorageError",
    "StorageUnavailableError",
    "UnknownPlatformError",
    "UnsupportedImageError",
    "UpstreamServerError",
    "transient_reasons",
]


class ProductImagesError(Exception):
    """Base class of every error this project raises on purpose."""

    #: A short machine-readable reason, recorded in manifests and summaries.
    reason = "error"
    #: Whether the same product, unchanged, can succeed later (an outage, not bad input):
    #: `product-images retry` runs only products that failed for such reasons (or --all).
    transient = False

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (pixel workers, Prefect's process runners); the
        # default pickling calls __init__(*args), which subclasses with their own signature
        # (SourceError(source, detail)) do not take. Rebuild from the state instead.
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(
    cls: type[ProductImagesError], args: tuple[Any, ...], state: dict[str, Any]
) -> ProductImagesError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


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


class ForbiddenSourceError(SourceError):
    """A source URL we refuse to fetch: not http(s), or a host on a loopback, link-local,
    private or otherwise non-public address (unless a setting allows it)."""

    reason = "forbidden_source"


class SourceFetchError(SourceError):
    """An http(s) source could not be downloaded: an HTTP error, a timeout, too many redirects."""

    reason = "source_fetch_failed"
    transient = True


class SourceTooLargeError(SourceFetchError):
    """The download is bigger than `source_url_max_bytes`; it was stopped, not kept."""

    reason = "source_too_large"
    transient = False


class StorageUnavailableError(ProductError):
    """The store failed while this product was being made. Nothing of it was published (the
    manifest is written last), so the product is deferred: a later run makes it."""

    reason = "storage_unavailable"
    transient = True


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
    """A data file (a platform or segmenter spec) is invalid; the message names the file and
    the field."""

    reason = "bad_spec"


class UnknownPlatformError(SpecError):
    """No spec file defines the requested platform or slot."""

    reason = "unknown_platform"


class ModelFileError(ProductImagesError):
    """A neural model's weight file is missing, fails its checksum, or cannot be fetched."""

    reason = "model_unavailable"


class SettingsError(ProductImagesError):
    """A setting has an invalid value."""

    reason = "bad_settings"


class ModelCatalogError(SettingsError):
    """A generative model catalogue file is invalid; the message names the file and the field."""

    reason = "bad_model_catalogue"


class ModelRetiredError(SettingsError):
    """The configured model id is shut down; the message names the ids to use instead."""

    reason = "model_retired"


class StorageError(ProductImagesError):
    """The store failed to read or write."""

    reason = "storage"


class ObjectNotFoundError(StorageError):
    """The requested key does not exist in the store."""

    reason = "not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"no object at {key!r}")
        self.key = key


class BudgetExceededError(ProductError):
    """The next paid call could pass the run's budget: the product is skipped, not failed."""

    reason = "budget"


class GenerationError(ProductError):
    """A generative backend did not give a usable image. Messages never contain API keys."""

    reason = "generation_failed"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableGenerationError(GenerationError):
    """Worth trying again: `retry_after` (seconds) is the server's hint when it gave one."""

    reason = "generation_unavailable"
    transient = True

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class RateLimitedError(RetryableGenerationError):
    """429: over a rate or quota limit."""

    reason = "rate_limited"


class UpstreamServerError(RetryableGenerationError):
    """500, 502, 503 or 504 from the API."""

    reason = "upstream_error"


class GenerationTimeoutError(RetryableGenerationError):
    """The API did not answer within the timeout."""

    reason = "timeout"


class NoImageError(RetryableGenerationError):
    """The answer had no image (text only) or could not be read."""

    reason = "no_image"


class BackendUnavailableError(RetryableGenerationError):
    """The backend's circuit breaker is open after a run of failures: no call was made.

    The product is deferred, not failed; `retry_after` is what is left of the cool-down.
    """

    reason = "backend_unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, None, retry_after)


class LimitsUnavailableError(RetryableGenerationError):
    """The server holding the shared rate and concurrency limits (Prefect's) did not answer
    (busy, restarting): no call was made, and the product is deferred, not failed."""

    reason = "limits_unavailable"


class BatchJobError(RetryableGenerationError):
    """A Gemini Batch API job ended FAILED, CANCELLED or EXPIRED, or was not done in time.

    The requests are not refused: send the ones in `unfinished` through synchronous calls.
    `results` holds what other jobs of the same run did return (key -> GenerationResult or
    GenerationError); `jobs` names the jobs that failed, `state` the state of the first one
    ("BATCH_STATE_EXPIRED", ..., or "TIMEOUT").
    """

    reason = "batch_failed"

    def __init__(
        self,
        message: str,
        *,
        jobs: Iterable[str] = (),
        state: str | None = None,
        results: Mapping[str, Any] | None = None,
        unfinished: Iterable[str] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(message, status)
        self.jobs: tuple[str, ...] = tuple(jobs)
        self.state = state
        self.results: dict[str, Any] = dict(results or {})
        self.unfinished: tuple[str, ...] = tuple(unfinished)


class PermanentGenerationError(GenerationError):
    """The same request would fail again; the message says what to fix."""

    reason = "generation_refused"


class ContentBlockedError(PermanentGenerationError):
    """The API blocked the prompt or the output for safety reasons."""

    reason = "content_blocked"


class BadRequestError(PermanentGenerationError):
    """400: the request body or a setting is invalid."""

    reason = "bad_request"


class AuthenticationError(PermanentGenerationError):
    """401 or 403: the API key is missing, invalid or lacks permission."""

    reason = "auth"


class ModelNotFoundError(PermanentGenerationError):
    """404: the configured model id does not exist (or was shut down)."""

    reason = "model_not_found"


def transient_reasons() -> frozenset[str]:
    """The `reason` of every error class whose failures a later run can fix by itself."""
    found: set[str] = set()
    pending: list[type[ProductImagesError]] = [ProductImagesError]
    while pending:
        cls = pending.pop()
        if cls.transient:
            found.add(cls.reason)
        pending.extend(cls.__subclasses__())
    return frozenset(found)
