"""What a configured model id means on a given day: its facts, the imageSize to send, warnings.

A shut-down id fails before any call with the ids to use instead; a deprecated or preview id,
an unsupported size or an id the catalogue does not know gives warnings that reach the log and
the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from product_images.errors import ModelRetiredError
from product_images.model_catalogue.catalog import ModelCatalog, ModelEntry, ModelPrice, SizeFacts

__all__ = ["SIZE_ORDER", "ModelChoice", "choose_model"]

SIZE_ORDER = ("512", "1K", "2K", "4K")


@dataclass(frozen=True)
class ModelChoice:
    """A configured model id resolved against its provider's catalogue."""

    provider: str
    model: str  # as configured: sent to the API unchanged (relays have their own aliases)
    entry: ModelEntry | None  # None: the catalogue does not know the id
    image_size: str | None  # imageSize to send; None: send none
    billed_size: str | None  # the catalogue size an image is priced at
    warnings: tuple[str, ...]
    current: tuple[str, ...]  # ids to suggest, the default first
    catalogue_version: str = ""  # sha256 prefix of the catalogue file it was read from

    @property
    def price(self) -> ModelPrice | None:
        """Token prices, with the billed size's list price as the per-image fallback."""
        if self.entry is None:
            return None
        per_image = self.image_usd
        return self.entry.price().model_copy(update={"image_usd": per_image})

    @property
    def billed(self) -> SizeFacts | None:
        """Tokens and list price of one image at the billed size."""
        if self.entry is None or self.billed_size is None:
            return None
        return self.entry.image_sizes[self.billed_size]

    @property
    def image_usd(self) -> float | None:
        """List price of one image at the billed size."""
        return self.billed.usd if self.billed else None

    @property
    def batch_discount(self) -> float | None:
        """Batch price as a share of the list price; None: no Batch API for this model."""
        return self.entry.batch_discount if self.entry else None

    @property
    def sends_image_size(self) -> bool | None:
        """Whether imageSize may be sent; None when unknown (the client guesses from the id)."""
        return self.entry.takes_image_size if self.entry else None


def choose_model(
    catalog: ModelCatalog, model: str, requested_size: str | None, today: date, setting: str
) -> ModelChoice:
    """Resolve `model` (as set in `setting`) on `today`; raise ModelRetiredError if shut down."""
    entry = catalog.find(model)
    current = tuple(m.id for m in catalog.current(today))
    if entry is None:
        warning = (
            f"{catalog.provider} model '{model}' is not in the model catalogue: no price is "
            "known, so calls are booked at $0 and the budget cannot cap them; add it to "
            f"{catalog.provider}.yaml in PRODUCT_IMAGES_MODEL_CATALOGUE_DIR "
            f"(current: {', '.join(current)})"
        )
        return ModelChoice(
            catalog.provider,
            model,
            None,
            requested_size,
            None,
            (warning,),
            current,
            catalog.version,
        )
    warnings = _status_warnings(entry, model, today, setting)
    size, billed, size_warning = _size(entry, requested_size)
    if size_warning:
        warnings.append(size_warning)
    return ModelChoice(
        catalog.provider, model, entry, size, billed, tuple(warnings), current, catalog.version
    )


def _status_warnings(entry: ModelEntry, model: str, today: date, setting: str) -> list[str]:
    status = entry.status_on(today)
    instead = ", ".join(entry.replacements)
    if status == "shut_down":
        when = f"on {entry.shutdown}" if entry.shutdown else "(date not announced)"
        raise ModelRetiredError(f"model '{model}' was shut down {when}: set {setting} to {instead}")
    warnings = []
    if status == "deprecated":
        since = f" since {entry.deprecated}" if entry.deprecated else ""
        note = f" ({entry.shutdown_note})" if entry.shutdown_note else ""
        warnings.append(f"model '{model}' is deprecated{since}{note}: use {instead} instead")
    elif status == "preview":
        warnings.append(f"model '{model}' is a preview: preview ids are shut down after GA")
    if entry.shutdown and entry.shutdown > today:
        warnings.append(f"model '{model}' shuts down on {entry.shutdown}")
    return warnings


def _size(entry: ModelEntry, requested: str | None) -> tuple[str | None, str, str | None]:
    """(imageSize to send, size billed, warning): the nearest supported size at or above."""
    sizes = list(entry.image_sizes)
    dearest = max(sizes, key=lambda s: entry.image_sizes[s].usd)
    if not entry.takes_image_size or requested is None:
        return None, dearest, None
    if requested in entry.image_sizes:
        return requested, requested, None
    chosen = _nearest(sizes, requested)
    warning = (
        f"model '{entry.id}' has no imageSize {requested}: using {chosen} "
        f"(sizes: {', '.join(sizes)}; PRODUCT_IMAGES_GEMINI_IMAGE_SIZE)"
    )
    return chosen, chosen, warning


def _nearest(sizes: list[str], requested: str) -> str:
    """The smallest of `sizes` at or above `requested`, else the largest."""
    ordered = sorted((s for s in sizes if s in SIZE_ORDER), key=SIZE_ORDER.index) or sizes
    if requested not in SIZE_ORDER:
        return ordered[-1]
    rank = SIZE_ORDER.index(requested)
    above = [s for s in ordered if s in SIZE_ORDER and SIZE_ORDER.index(s) >= rank]
    return above[0] if above else ordered[-1]
