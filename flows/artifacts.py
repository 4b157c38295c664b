"""Prefect artifacts: a catalog run's outputs table, markdown summary and progress bar, and
a product run's page (thumbnails, check results, links).

Decision: artifacts are created only inside a flow or task run. Prefect 3.9 can still create
them outside a run, but warns that this is deprecated, and outside a run (e.g. the inline
engine of the CLI) there may be no API at all, so every function here is a no-op there.
Inside a run, an artifact that cannot be made (API down, unreadable manifest, bad link) is
logged as a warning and skipped: artifacts are a view of the run, never a reason to fail it.

Image links come from `Store.link`: presigned https URLs on S3 (so private buckets render,
until the links expire after the `link_expiry_hours` setting), file:// URLs on a local store
(only a browser on the same machine can open those; the Prefect UI usually will not show
them). Pictures shown inline are thumbnails (product_images/thumbnails.py), each linking to
the full-size image.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext, TaskRunContext

from product_images.manifest import (
    Manifest,
    MasterRecord,
    OutputRecord,
    ProductResult,
    manifest_key,
)
from product_images.settings import get_settings
from product_images.store import Store
from product_images.summary import CatalogSummary
from product_images.thumbnails import ensure_thumbnail

__all__ = [
    "MAX_KEY_LENGTH",
    "ProgressReporter",
    "artifact_key",
    "publish_product_artifact",
    "publish_run_artifacts",
]

#: Longest artifact key made; longer ones are cut and end in a hash of the full key.
MAX_KEY_LENGTH = 80
#: Products whose manifests are read for one table row per output image; later ones get one row.
MAX_DETAILED_PRODUCTS = 200
#: Products shown with thumbnails in the markdown summary; the rest are counted.
MAX_THUMBNAIL_PRODUCTS = 50
#: Failed (and, separately, skipped) products listed in the markdown summary.
MAX_LISTED_FAILURES = 100

_NOT_KEY_CHARS = re.compile(r"[^a-z0-9]+")
_MANIFEST_READERS = 8
_log = logging.getLogger(__name__)

Row = dict[str, Any]


def artifact_key(*parts: str) -> str:
    """A valid artifact key from free text: lowercase ASCII letters, digits and single dashes."""
    text = "-".join(parts)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    key = _NOT_KEY_CHARS.sub("-", ascii_text.lower()).strip("-")
    if len(key) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        key = f"{key[: MAX_KEY_LENGTH - 9].rstrip('-')}-{digest}"
    return key or "artifact"


def _in_run() -> bool:
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The run logger (shown in the UI) inside a run, else this module's logger."""
    return get_run_logger() if _in_run() else _log


def _safely(what: str, make: Callable[[], object]) -> bool:
    """Run `make`; log and swallow any failure. Whether it worked."""
    try:
        make()
    except Exception as error:
        _logger().warning("artifacts: %s failed: %r", what, error)
        return False
    return True


# ---------------------------------------------------------------------------- run artifacts


def publish_run_artifacts(summary: CatalogSummary, store: Store, *, run_label: str) -> None:
    """Publish the outputs table and the markdown summary of a catalog run; never raises."""
    if not _in_run():
        _log.debug("not in a flow or task run: no artifacts for %s", run_label)
        return
    manifests: dict[str, Manifest | str] = {}
    _safely("reading manifests", lambda: manifests.update(_read_manifests(summary.results, store)))
    _safely("the table artifact", lambda: _publish_table(summary, manifests, store, run_label))
    _safely(
        "the markdown artifact", lambda: _publish_markdown(summary, manifests, store, run_label)
    )


def _publish_table(
    summary: CatalogSummary, manifests: dict[str, Manifest | str], store: Store, run_label: str
) -> None:
    rows = [row for result in summary.results for row in _rows(result, manifests, store)]
    create_table_artifact(
        rows,
        key=artifact_key("catalog", run_label, "outputs"),
        description=f"Catalog {run_label}: {len(summary.results)} products, "
        "a row per output image or per product not made",
        _sync=True,  # type: ignore[call-arg]  # also from async flows: no un-awaited coroutine
    )


def _publish_markdown(
    summary: CatalogSummary, manifests: dict[str, Manifest | str], store: Store, run_label: str
) -> None:
    create_markdown_artifact(
        _markdown(summary, manifests, store, run_label),
        key=artifact_key("catalog", run_label, "summary"),
        description=f"Catalog {run_label}: totals, thumbnails, review flags and failures",
        _sync=True,  # type: ignore[call-arg]
    )


def _read_manifests(results: list[ProductResult], store: Store) -> dict[str, Manifest | str]:
    """Manifests of the first MAX_DETAILED_PRODUCTS done products, read in parallel.

    A manifest that cannot be read maps to the error text instead.
    """
    done = [r for r in results if r.status == "done" and r.manifest_key]
    done = done[:MAX_DETAILED_PRODUCTS]
    with ThreadPoolExecutor(max_workers=_MANIFEST_READERS) as pool:
        read = list(pool.map(lambda r: _read_manifest(store, cast(str, r.manifest_key)), done))
    return {result.sku: manifest for result, manifest in zip(done, read, strict=True)}


def _read_manifest(store: Store, key: str) -> Manifest | str:
    try:
        return Manifest.model_validate_json(store.get(key))
    except Exception as error:
        return f"manifest unreadable: {error!r}"[:300]


def _link(store: Store, key: str | None) -> str:
    """A URL for `key`, or "" when the store cannot make one."""
    if not key:
        return ""
    try:
        return store.link(key, round(get_settings().store.link_expiry_hours * 3600))
    except Exception as error:
        _log.debug("no link for %s: %r", key, error)
        return ""


def _picture(
    store: Store, sku: str, record: MasterRecord | OutputRecord, title: str
) -> tuple[str, str] | None:
    """A thumbnail and a link to the full image, as markdown; None when either cannot be
    had. Two cells, not an image inside a link: the UI's markdown shows that as text."""
    try:
        thumb = _link(store, ensure_thumbnail(store, sku, record))
    except Exception as error:
        _logger().warning("artifacts: no thumbnail of %s: %r", record.key, error)
        return None
    full = _link(store, record.key)
    if not (thumb and full):
        return None
    return f"![{_text(sku)} {_text(title)}]({_url(thumb)})", f"[full size]({_url(full)})"


# ---------------------------------------------------------------------------- table rows


def _status(result: ProductResult) -> str:
    return "needs_review" if result.status == "done" and result.needs_review else result.status


def _row(result: ProductResult, **values: Any) -> Row:
    row: Row = {
        "sku": result.sku,
        "platform": "",
        "slot": "",
        "variant": "",
        "status": _status(result),
        "checks": "",
        "failed_rules": "",
        "size": "",
        "bytes": None,
        "reason": "",
        "link": "",
    }
    return row | values


def _rows(result: ProductResult, manifests: dict[str, Manifest | str], store: Store) -> list[Row]:
    """The table rows of one product: one per output, or one for the whole product."""
    if result.status != "done":
        return [_row(result, reason=_reason(result))]
    manifest = manifests.get(result.sku)
    if not isinstance(manifest, Manifest):
        note = manifest or f"{result.outputs} outputs (details in the manifest)"
        return [_row(result, reason=note, link=_link(store, result.manifest_key))]
    reasons = "; ".join(_flag_texts(manifest))
    rows = [_output_row(result, output, reasons, store) for output in manifest.outputs]
    return rows or [_row(result, reason=reasons or "no outputs")]


def _output_row(result: ProductResult, output: OutputRecord, reason: str, store: Store) -> Row:
    failed = [check.rule for check in output.checks if not check.passed]
    passed = len(output.checks) - len(failed)
    return _row(
        result,
        platform=output.platform,
        slot=output.slot,
        variant=output.variant,
        checks=f"{passed}/{len(output.checks)} passed",
        failed_rules=", ".join(failed),
        size=f"{output.width}x{output.height}",
        bytes=output.bytes,
        reason=reason,
        link=_link(store, output.key),
    )


def _reason(result: ProductResult) -> str:
    return f"{result.reason}: {result.message}" if result.reason else result.message


def _flag_texts(manifest: Manifest) -> list[str]:
    return [
        f"{flag.step}: {flag.reason} (confidence {flag.confidence:.2f})"
        for flag in manifest.needs_review
    ]


# ---------------------------------------------------------------------------- markdown


def _markdown(
    summary: CatalogSummary, manifests: dict[str, Manifest | str], store: Store, run_label: str
) -> str:
    """The summary artifact's markdown, bounded in size whatever the catalog's."""
    sections = [
        [f"# Catalog run {_text(run_label)}", ""],
        _totals(summary),
        _products(summary.results, manifests, store),
        _listed("Failed", summary.failed),
        _listed("Deferred", summary.deferred),
        _listed("Skipped", summary.skipped),
    ]
    lines = [line for section in sections for line in section]
    kept = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    return "\n".join(kept).strip() + "\n"


def _totals(summary: CatalogSummary) -> list[str]:
    paid = sum(r.paid_calls for r in summary.results)
    lines = [
        "| products | done | needs review | failed | skipped | paid calls | cost (USD) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(summary.results)} | {summary.done} | {summary.needs_review} "
        f"| {len(summary.failed)} | {len(summary.skipped)} | {paid} | {summary.cost_usd:.4f} |",
        "",
    ]
    reasons = summary.failure_reasons()
    if reasons:
        counted = ", ".join(f"`{_code(r or 'unknown')}` × {n}" for r, n in reasons.most_common())
        lines += [f"**Failed by reason:** {counted}", ""]
    return lines


def _products(
    results: list[ProductResult], manifests: dict[str, Manifest | str], store: Store
) -> list[str]:
    done = [r for r in results if r.status == "done"]
    if not done:
        return []
    lines = ["## Products", ""]
    for result in done[:MAX_THUMBNAIL_PRODUCTS]:
        lines += _product(result, manifests.get(result.sku), store)
    if len(done) > MAX_THUMBNAIL_PRODUCTS:
        more = len(done) - MAX_THUMBNAIL_PRODUCTS
        lines += [f"…and {more} more done products: see the outputs table.", ""]
    return lines


def _product(result: ProductResult, manifest: Manifest | str | None, store: Store) -> list[str]:
    flag = " (needs review)" if result.needs_review else ""
    lines = [f"### {_text(result.sku)}{flag}", ""]
    if not isinstance(manifest, Manifest):
        return [*lines, f"- {_text(manifest or 'manifest not read')}", ""]
    lines += _thumbnails(result.sku, manifest, store)
    lines += [f"- needs review: {_text(text)}" for text in _flag_texts(manifest)]
    for output in manifest.outputs:
        failed = [check.rule for check in output.checks if not check.passed]
        if failed:
            rules = ", ".join(f"`{_code(rule)}`" for rule in failed)
            lines.append(f"- checks failed on {output.platform}/{output.slot}: {rules}")
    return [*lines, ""]


def _thumbnails(sku: str, manifest: Manifest, store: Store) -> list[str]:
    """A one-row table: the white master beside the Amazon (or first) main image."""
    master = next((m for m in manifest.masters if m.variant == "white"), None)
    master = master or next(iter(manifest.masters), None)
    main = _main_output(manifest.outputs)
    cells: list[tuple[str, MasterRecord | OutputRecord]] = []
    if master:
        cells.append((f"{master.variant} master", master))
    if main:
        cells.append((f"{main.platform}/{main.slot}", main))
    return _picture_row(store, sku, cells)


def _picture_row(
    store: Store, sku: str, cells: list[tuple[str, MasterRecord | OutputRecord]]
) -> list[str]:
    """A markdown table of thumbnails under their titles, links to the full images below."""
    shown = [(title, _picture(store, sku, record, title)) for title, record in cells]
    pictures = [(title, picture) for title, picture in shown if picture]
    if not pictures:
        return []
    return [
        "| " + " | ".join(_text(title) for title, _ in pictures) + " |",
        "|" + "---|" * len(pictures),
        "| " + " | ".join(image for _, (image, _) in pictures) + " |",
        "| " + " | ".join(link for _, (_, link) in pictures) + " |",
        "",
    ]


# ---------------------------------------------------------------------------- product runs


def publish_product_artifact(result: ProductResult, store: Store) -> None:
    """Publish a product run's page, keyed `product-<sku>` (the UI keeps every version of a
    key, so a product's history is one list); never raises, a no-op outside a run."""
    if not _in_run():
        return
    _safely(
        "the product artifact",
        lambda: create_markdown_artifact(
            _product_page(result, store),
            key=artifact_key("product", result.sku),
            description=f"{result.sku}: {_status(result)}",
            _sync=True,  # type: ignore[call-arg]
        ),
    )


def _product_page(result: ProductResult, store: Store) -> str:
    lines = [f"# {_text(result.sku)}: {_status(result)}", ""]
    if result.reason or result.message:
        lines += [f"{_text(_reason(result), 1000)}", ""]
    manifest = _read_manifest(store, result.manifest_key) if result.manifest_key else None
    if result.status in ("done", "unchanged") and isinstance(manifest, Manifest):
        lines += _manifest_section(result.sku, manifest, store)
    elif isinstance(manifest, str):
        lines += [f"- {_text(manifest)}", ""]
    return "\n".join(lines).strip() + "\n"


def _manifest_section(sku: str, manifest: Manifest, store: Store) -> list[str]:
    order = {"white": 0, "scene": 1, "detail": 2}
    masters = sorted(manifest.masters, key=lambda m: order.get(m.variant, len(order)))
    cells: list[tuple[str, MasterRecord | OutputRecord]] = [
        (f"{m.variant} master", m) for m in masters
    ]
    lines = _picture_row(store, sku, cells)
    lines += [f"- needs review: {_text(text)}" for text in _flag_texts(manifest)]
    link = _link(store, manifest_key(sku))
    lines += [f"- [manifest]({_url(link)})" if link else "", ""]
    lines += [
        "| platform | slot | size | bytes | checks | failed rules | image |",
        "|---|---|---|---:|---|---|---|",
    ]
    return lines + [_output_line(output, store) for output in manifest.outputs] + [""]


def _output_line(output: OutputRecord, store: Store) -> str:
    failed = [check.rule for check in output.checks if not check.passed]
    passed = len(output.checks) - len(failed)
    link = _link(store, output.key)
    image = f"[{_text(output.format)}]({_url(link)})" if link else ""
    rules = ", ".join(f"`{_code(rule)}`" for rule in failed)
    return (
        f"| {_text(output.platform)} | {_text(output.slot)} | {output.width}x{output.height} "
        f"| {output.bytes} | {passed}/{len(output.checks)} | {rules} | {image} |"
    )


def _main_output(outputs: list[OutputRecord]) -> OutputRecord | None:
    """Amazon's main image, else any main image, else the first output."""
    return min(outputs, key=lambda o: (o.slot != "main", o.platform != "amazon"), default=None)


def _listed(title: str, results: list[ProductResult]) -> list[str]:
    if not results:
        return []
    lines = [f"## {title} ({len(results)})", ""]
    for result in results[:MAX_LISTED_FAILURES]:
        reason = f" `{_code(result.reason)}`" if result.reason else ""
        lines.append(f"- **{_text(result.sku)}**{reason}: {_text(result.message)}")
    if len(results) > MAX_LISTED_FAILURES:
        lines.append(f"- …and {len(results) - MAX_LISTED_FAILURES} more: see the outputs table.")
    return [*lines, ""]


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!])")


def _text(text: str, limit: int = 300) -> str:
    """Free text made safe for one markdown line (and table cell), at most `limit` chars."""
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _code(text: str) -> str:
    """Text for an inline code span: one line, no backticks, bounded."""
    return " ".join(text.replace("`", "'").split())[:100]


def _url(url: str) -> str:
    """A URL that cannot end a markdown link destination early."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


# ---------------------------------------------------------------------------- progress


class ProgressReporter:
    """A progress artifact for a catalog run: `start(total)`, `advance()` per product, `finish()`.

    Thread-safe: `advance` may be called from any thread (the API is reached in the context
    `start` ran in). Updates are rate-limited to one per `min_interval` seconds and at least
    `min_step` percent of change; reaching the total (or `finish`) always posts 100%. A no-op
    outside a run; after a failed API call it stops posting, so a broken API costs one call.
    """

    def __init__(self, run_label: str, *, min_interval: float = 0.5, min_step: float = 1.0):
        self.key = artifact_key("catalog", run_label, "progress")
        self.min_interval = min_interval
        self.min_step = min_step
        self.artifact_id: UUID | None = None
        self.total = 0
        self.done = 0
        self._sent = -1.0
        self._sent_at = float("-inf")
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._context: contextvars.Context | None = None

    def __repr__(self) -> str:
        return f"ProgressReporter({self.key!r}, {self.done}/{self.total})"

    @property
    def percent(self) -> float:
        """How far the run is, 0 to 100; an empty run is complete."""
        return 100.0 if self.total <= 0 else min(100.0, 100.0 * self.done / self.total)

    def start(self, total: int) -> None:
        """Create the artifact at 0% (100% for an empty catalog)."""
        with self._lock:
            self.total, self.done = max(0, total), 0
        if not _in_run():
            _log.debug("not in a flow or task run: no progress artifact %s", self.key)
            return
        self._context = contextvars.copy_context()
        _safely("the progress artifact", self._create)

    def advance(self, n: int = 1) -> None:
        """Count `n` more products as finished; post the progress if it is due."""
        with self._lock:
            self.done = min(self.total, self.done + n)
            final = self.percent >= 100.0
            due = final or (
                self.percent - self._sent >= self.min_step
                and time.monotonic() - self._sent_at >= self.min_interval
            )
        if due:
            self._send(final=final)

    def finish(self) -> None:
        """Post 100%, whatever was counted (products rejected up front are never advanced)."""
        with self._lock:
            self.done = self.total
        self._send(final=True)

    def _create(self) -> None:
        percent = self.percent
        artifact_id = create_progress_artifact(
            percent,
            key=self.key,
            description=self._description(),
            _sync=True,  # type: ignore[call-arg]
        )
        with self._lock:
            self.artifact_id = cast(UUID, artifact_id)
            self._sent, self._sent_at = percent, time.monotonic()

    def _send(self, *, final: bool) -> None:
        """Post the latest progress; concurrent non-final posts are dropped, never reordered."""
        if self.artifact_id is None or self._context is None:
            return
        if not self._send_lock.acquire(blocking=final):
            return
        try:
            with self._lock:
                percent, description = self.percent, self._description()
                if percent <= self._sent:
                    return
                self._sent, self._sent_at = percent, time.monotonic()
            self._context.run(self._post, percent, description)
        finally:
            self._send_lock.release()

    def _post(self, percent: float, description: str) -> None:
        artifact_id = self.artifact_id
        if artifact_id is None:
            return

        def update() -> None:
            update_progress_artifact(
                artifact_id,
                percent,
                description=description,
                _sync=True,  # type: ignore[call-arg]
            )

        if not _safely("a progress update", update):
            self.artifact_id = None  # the API is failing: stop paying for calls

    def _description(self) -> str:
        return f"{self.done} of {self.total} products finished"
