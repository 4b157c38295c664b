"""The steps of one product, Prefect-free: prepare masters -> render slots -> publish.

Each step takes and returns small models (keys, records), never pixels, so the same
functions serve the Prefect tasks in `tasks/` and the inline engine (`run_product`).
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from product_images import __version__
from product_images.backends import (
    MasterBackend,
    MasterContext,
    ProductCutout,
    generative_backend,
    route,
)
from product_images.errors import (
    BudgetExceededError,
    InvalidSkuError,
    MissingSourceError,
    NoProductFoundError,
    ObjectNotFoundError,
    ProductError,
    RenderError,
    StorageError,
    StorageUnavailableError,
)
from product_images.imaging.check import check_image
from product_images.imaging.compose import Master, with_shadow
from product_images.imaging.encode import SharedEncodings, encode_master
from product_images.imaging.loading import SourceImage, decode_source
from product_images.imaging.provenance import TRAINED_ALGORITHMIC_MEDIA, ai_provenance_xmp
from product_images.imaging.render import frame_slots
from product_images.imaging.segment import Cutout, cutout_from_alpha, segment_product
from product_images.imaging.transparent import encode_cutout
from product_images.manifest import (
    CallRecord,
    Manifest,
    MasterRecord,
    OutputRecord,
    ProductResult,
    ReviewFlag,
    SourceInfo,
    manifest_key,
    stable_key,
    versioned_key,
)
from product_images.native_threads import single_threaded_blas
from product_images.segmenters import NeuralSegmenter, find_segmenter
from product_images.settings import Settings, get_settings
from product_images.specs import (
    PlatformSpec,
    ShadowSpec,
    SlotSpec,
    Variant,
    load_specs,
    select_platforms,
)
from product_images.store import Store, open_store, read_url
from product_images.workers import pixel_pool

__all__ = [
    "SKU_PATTERN",
    "PreparedProduct",
    "ProductRequest",
    "check_sku",
    "cut_out",
    "load_source",
    "platforms_of",
    "prepare_masters",
    "publish_manifest",
    "render_slots",
    "run_product",
    "segmenter_of",
    "warm_up",
]

_T = TypeVar("_T")
_R = TypeVar("_R")
#: A SKU safe as a storage key, for both Python and JSON Schema (the Run form checks it in
#: the browser and the server): letters, digits, '.', '_', '-', no '..', 1-128 characters.
#: It ends in (?![\s\S]) rather than $, which in Python also matches before a final newline.
SKU_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?![\s\S])"
_SKU = re.compile(SKU_PATTERN)
_CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}


class ProductRequest(BaseModel):
    """One product to make: a catalog row."""

    sku: str = Field(description="Stock keeping unit; becomes the product's folder.")
    source: str = Field(
        description="Source photo: a path, an s3:// URL, or an http(s) URL (public addresses "
        "only unless source_url_allow_private; size and time limited)."
    )
    platforms: list[str] = Field(description="Marketplaces to render for.")
    name: str = Field(default="", description="Product name.")
    category: str = Field(default="", description="Product category.")
    brand_style: str = Field(default="", description="Look and feel for generated scenes.")
    scene_hint: str = Field(default="", description="Where a generated scene is set.")
    backend: Literal["auto", "local", "gemini", "openai"] | None = Field(
        default=None, description="Backend for this product; unset = the setting."
    )
    run_id: str = Field(default="", description="Run this product belongs to (shared budget).")
    budget_usd: float | None = Field(
        default=None, gt=0, description="The run's spending cap; unset = the setting."
    )
    variants: list[Variant] | None = Field(
        default=None,
        description="Masters to make (and the slots showing them); unset = all the chosen "
        "platforms need.",
    )
    tag: str = Field(default="", description="Catalog tag recorded in the cost ledger.")

    def prompt_fields(self) -> dict[str, str]:
        """What prompt templates are filled from."""
        return {
            "name": self.name,
            "category": self.category,
            "brand_style": self.brand_style,
            "scene_hint": self.scene_hint,
        }


class PreparedProduct(BaseModel):
    """What the prepare step stored: the masters and what it learnt on the way."""

    request: ProductRequest
    source: SourceInfo
    backend: str
    masters: list[MasterRecord]
    cutout: MasterRecord | None = None
    needs_review: list[ReviewFlag]
    calls: list[CallRecord] = Field(default_factory=list)


def check_sku(sku: str) -> str:
    """The SKU if it is safe as a storage key; otherwise InvalidSkuError."""
    if not _SKU.match(sku):
        raise InvalidSkuError(
            f"SKU {sku!r} is not usable as a storage key: use letters, digits, '.', '_' "
            "and '-' (no slashes, no '..', at most 128 characters)"
        )
    return sku


@lru_cache(maxsize=8)
def _specs(dirs: tuple[Path, ...]) -> dict[str, PlatformSpec]:
    return load_specs(dirs)


def warm_up() -> None:
    """Load, once per process, what every product needs: the spec tables and the neural
    segmenter's onnxruntime session. Pixel worker processes run it before any work
    (`product_images.workers`); anything else loaded once per process belongs here."""
    single_threaded_blas()
    settings = get_settings()
    _specs(tuple(settings.spec_dirs()))
    segmenter_of(settings)


def platforms_of(request: ProductRequest, settings: Settings) -> list[PlatformSpec]:
    """The validated specs of the platforms a request asks for."""
    return select_platforms(_specs(tuple(settings.spec_dirs())), request.platforms)


def load_source(request: ProductRequest, settings: Settings) -> SourceImage:
    """The request's source photo, decoded; a missing file is the product's error."""
    return _decode(_read_source(request, settings), request, settings)


def _read_source(request: ProductRequest, settings: Settings) -> bytes:
    try:
        return read_url(request.source, settings=settings)
    except ObjectNotFoundError:
        raise MissingSourceError(request.source, "no such file or object") from None


def _decode(data: bytes, request: ProductRequest, settings: Settings) -> SourceImage:
    return decode_source(
        data, request.source, max_pixels=settings.max_pixels, min_side=settings.min_side
    )


def segmenter_of(settings: Settings) -> NeuralSegmenter | None:
    """The neural segmenter the settings name, loaded once per process; None: classical."""
    return find_segmenter(
        settings.segmenter, settings.models_dir, settings.segmenter_specs_dir,
        settings.segmenter_threads,
    )  # fmt: skip


def _decode_and_cut(
    data: bytes, request: ProductRequest, settings: Settings
) -> tuple[SourceInfo, ProductCutout]:
    """The source decoded and cut out: pixels only, no I/O (a worker process's job)."""
    source = _decode(data, request, settings)
    return _source_info(request, source), cut_out(source, request.source, settings)


def _cut_product(request: ProductRequest, settings: Settings) -> tuple[SourceInfo, ProductCutout]:
    """The source read here (I/O, credentials), then decoded and cut out in a pixel worker
    process when the settings ask for several."""
    data = _read_source(request, settings)
    if settings.processes <= 1:
        return _decode_and_cut(data, request, settings)
    return pixel_pool(settings.processes, warm_up).run(_decode_and_cut, data, request, settings)


def cut_out(source: SourceImage, name: str, settings: Settings) -> ProductCutout:
    """The product's cut-out: a transparent source is trusted, anything else segmented."""
    rgba = source.image
    if source.has_alpha:
        alpha = np.asarray(rgba.getchannel("A"))
        cut: Cutout = cutout_from_alpha(alpha)
        return ProductCutout(np.asarray(rgba.convert("RGB")), cut)
    cut = segment_product(rgba, settings.working_side, segmenter_of(settings))
    if not cut.alpha.any():
        detail = "; ".join(cut.reasons) or "no product found"
        raise NoProductFoundError(name, f"cannot separate a product from the background ({detail})")
    return ProductCutout(np.asarray(rgba.convert("RGB")), cut)


def _review_flags(
    step: str, confidence: float, reasons: tuple[str, ...], settings: Settings
) -> list[ReviewFlag]:
    if confidence >= settings.review_threshold:
        return []
    reason = "; ".join(reasons) or "low confidence"
    return [ReviewFlag(step=step, reason=reason, confidence=confidence)]


def _store_master(
    store: Store,
    sku: str,
    variant: str,
    master: Master,
    backend: str,
    look: str = "",
    rank: int = 0,
) -> MasterRecord:
    data = encode_master(master.image)
    sha256 = hashlib.sha256(data).hexdigest()
    name = f"{variant}-{'shadow-' if variant == 'white' else ''}{look}" if look else variant
    name = f"{name}-{rank + 1}" if rank else name
    key = versioned_key(f"{sku}/masters/{name}.png", sha256)
    store.put(key, data, "image/png")
    _remember(store, key, sha256, master.image)
    return MasterRecord(
        generated_by=master.generated_by,
        digital_source_type=master.digital_source_type,
        template_sha256=master.template_sha256,
        notes=list(master.notes),
        variant=variant,
        look=look,
        rank=rank,
        key=key,
        width=master.image.width,
        height=master.image.height,
        sha256=sha256,
        backend=backend,
        confidence=master.confidence,
        product_box=master.product_box,
    )


def _store_cutout(store: Store, sku: str, product: ProductCutout) -> MasterRecord:
    """The transparent cut-out on the upright source's pixel grid, its alpha being our mask."""
    cut = product.cutout
    data = encode_cutout(product.rgb, cut.alpha)
    sha256 = hashlib.sha256(data).hexdigest()
    key = versioned_key(f"{sku}/masters/cutout.png", sha256)
    store.put(key, data, "image/png")
    height, width = cut.alpha.shape
    return MasterRecord(
        variant="cutout",
        key=key,
        width=width,
        height=height,
        sha256=sha256,
        backend="local",
        confidence=cut.confidence,
        product_box=cut.box,
        notes=list(cut.reasons),
        segmenter=cut.segmenter,
    )


def _in_parallel(call: Callable[[_T], _R], items: list[_T], threads: int) -> list[_R]:
    """`call` over `items` on a few threads (Pillow and OpenCV release the GIL), in order."""
    if threads <= 1 or len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(call, items))


def prepare_masters(request: ProductRequest, store: Store, settings: Settings) -> PreparedProduct:
    """Load the source, cut the product out, and store one master per needed variant."""
    single_threaded_blas()
    sku = check_sku(request.sku)
    variants = _variants(request, settings)
    generative = generative_backend(settings, request.backend)
    if generative is not None and set(variants) - {"white"}:
        # During an outage, defer before the pixel work rather than after it.
        generative.check_available()
    source, product = _cut_product(request, settings)
    context = MasterContext(
        sku=sku,
        source_sha256=source.sha256,
        store=store,
        fields=request.prompt_fields(),
        run_id=request.run_id,
        tag=request.tag,
        budget_usd=request.budget_usd if request.budget_usd is not None else settings.budget_usd,
    )

    backends = {v: route(v, product.cutout.confidence, generative, settings) for v in variants}
    if generative is not None:
        paid = [v for v, b in backends.items() if b is generative]
        generative.check_affordable(paid, settings, context)

    slots = [s for p in platforms_of(request, settings) for s in p.slots]

    def make(variant: Variant) -> tuple[list[MasterRecord], list[ReviewFlag]]:
        backend = backends[variant]
        master = backend.make_master(variant, product, settings, context)
        looks = _looks(variant, master, [s for s in slots if s.variant == variant])
        if variant == "detail":
            looks += _detail_looks(backend, slots, product, settings, context)
        records = [
            _store_master(store, sku, variant, look, backend.name, key) for key, look in looks
        ] + [
            _store_master(store, sku, variant, other, backend.name, rank=rank)
            for rank, other in enumerate(master.alternates, 1)
        ]
        flags = _review_flags(variant, master.confidence, master.reasons, settings)
        if master.digital_source_type != TRAINED_ALGORITHMIC_MEDIA:  # the cut-out's pixels
            confidence = min(master.confidence, product.cutout.confidence)  # and its doubts
            records = [r.model_copy(update={"confidence": confidence}) for r in records]
        return records, flags

    with ThreadPoolExecutor(max_workers=1) as side:  # the big RGBA PNG beside the masters
        cutout = side.submit(_store_cutout, store, sku, product)
        made = _in_parallel(make, variants, settings.threads)
        cutout_record = cutout.result()
    records = [record for records, _ in made for record in records]
    uses_cutout = any(r.digital_source_type != TRAINED_ALGORITHMIC_MEDIA for r in records)
    cut = product.cutout
    flags = _review_flags("cutout", cut.confidence, cut.reasons, settings) if uses_cutout else []
    return PreparedProduct(
        request=request,
        source=source,
        backend=", ".join(sorted({r.backend for r in records})),
        masters=records,
        cutout=cutout_record,
        needs_review=flags + [flag for _, fs in made for flag in fs],
        calls=list(context.calls),
    )


def _variants(request: ProductRequest, settings: Settings) -> list[Variant]:
    """The masters to make: what the platforms' slots show, narrowed to `request.variants`."""
    needed = {v for p in platforms_of(request, settings) for v in p.variants()}
    chosen = needed & set(request.variants) if request.variants else needed
    if not chosen:
        raise RenderError(
            f"none of the variants {request.variants} is shown by the platforms {request.platforms}"
        )
    return sorted(chosen)


def _looks(variant: Variant, master: Master, slots: list[SlotSpec]) -> list[tuple[str, Master]]:
    """The takes of a master to store, by look: the plain one (kept whatever the slots
    want), and for white slots one per distinct shadow."""
    shadows: dict[str, ShadowSpec] = {
        s.shadow_key(): s.shadow for s in slots if s.shadow is not None
    }
    return [("", master)] + [(key, with_shadow(master, spec)) for key, spec in shadows.items()]


def _detail_looks(
    backend: MasterBackend,
    slots: list[SlotSpec],
    product: ProductCutout,
    settings: Settings,
    context: MasterContext,
) -> list[tuple[str, Master]]:
    """Detail masters cropped at each non-square detail slot's aspect, where the backend
    crops them itself (otherwise those slots crop the square master)."""
    aspects = {s.master_look(): s.aspect_ratio() for s in slots if s.variant == "detail"}
    made = [
        (look, backend.detail_at(a, product, settings, context))
        for look, a in aspects.items()
        if look
    ]
    return [(look, master) for look, master in made if master is not None]


def _source_info(request: ProductRequest, source: SourceImage) -> SourceInfo:
    return SourceInfo(
        key=request.source,
        sha256=source.sha256,
        width=source.image.width,
        height=source.image.height,
        format=source.format,
        notes=list(source.notes),
    )


# Masters just made in this process, so an inline run does not decode what it just encoded.
# Keyed by store, key and checksum, so a stale entry can never be used.
_RECENT: dict[tuple[str, str, str], Image.Image] = {}
_RECENT_LOCK = threading.Lock()


def _remember(store: Store, key: str, sha256: str, image: Image.Image) -> None:
    with _RECENT_LOCK:
        if len(_RECENT) >= 6:
            _RECENT.pop(next(iter(_RECENT)))
        _RECENT[(store.url, key, sha256)] = image


def _open_master(store: Store, record: MasterRecord) -> Image.Image:
    with _RECENT_LOCK:
        cached = _RECENT.pop((store.url, record.key, record.sha256), None)
    if cached is not None:
        return cached
    image = Image.open(io.BytesIO(store.get(record.key)))
    image.load()
    return image.convert("RGB")


def _source_type(record: MasterRecord) -> str | None:
    """The IPTC term for outputs of `record` (generated masters of older manifests: trained)."""
    if record.digital_source_type or not record.generated_by:
        return record.digital_source_type
    return TRAINED_ALGORITHMIC_MEDIA


def _render_slot(
    sku: str,
    platform: PlatformSpec,
    slot: SlotSpec,
    framed: tuple[MasterRecord, Image.Image],
    encodings: SharedEncodings,
) -> tuple[OutputRecord, bytes]:
    """Encode and check one slot's image: `framed` is its master's record and the image."""
    record, image = framed
    source_type = _source_type(record)
    xmp = ai_provenance_xmp(record.generated_by or "", source_type) if source_type else None
    data, encoded = encodings.encode(image, slot, xmp)
    sha256 = hashlib.sha256(data).hexdigest()
    key = versioned_key(f"{sku}/{platform.name}/{slot.name}.{slot.extension}", sha256)
    checks = check_image(data, slot, key)
    output = OutputRecord(
        platform=platform.name,
        slot=slot.name,
        variant=slot.variant,
        key=key,
        width=encoded.width,
        height=encoded.height,
        format=slot.format,
        bytes=len(data),
        sha256=sha256,
        checks=checks,
        digital_source_type=source_type,
    )
    return output, data


def _shown_by(slot: SlotSpec, masters: Collection[tuple[str, str]]) -> str | None:
    """The look of the master a slot shows: its own when made, else the plain one; None
    when its variant was not made."""
    for look in (slot.master_look(), ""):
        if (slot.variant, look) in masters:
            return look
    return None


def render_slots(prepared: PreparedProduct, store: Store, settings: Settings) -> list[OutputRecord]:
    """Every slot of every requested platform, each master decoded once, each slot checked.

    All slots are rendered before any is stored, so a slot that cannot be made (e.g. an
    impossible byte budget) leaves the product's published outputs untouched. A master's slots
    are framed together (`frame_slots`: equal framings as one chain, largest first) and equal
    images encoded once; one master's framed images are in memory at a time.
    """
    single_threaded_blas()
    masters = {
        (m.variant, m.look): (m, _open_master(store, m))
        for m in prepared.masters
        if m.rank == 0  # alternatives are for people, not slots
    }
    jobs = [
        (p, s, look)
        for p in platforms_of(prepared.request, settings)
        for s in p.slots
        if (look := _shown_by(s, masters)) is not None  # only the chosen variants were made
    ]
    sku = prepared.request.sku
    done: dict[int, tuple[OutputRecord, bytes]] = {}
    for record, image in masters.values():
        mine = [
            i
            for i, (_, s, look) in enumerate(jobs)
            if (s.variant, look) == (record.variant, record.look)
        ]
        images = frame_slots(
            image,
            record.product_box,
            [jobs[i][1] for i in mine],
            lambda call, chains: _in_parallel(call, chains, settings.threads),
        )
        encodings = SharedEncodings()
        made = _in_parallel(
            lambda job: _render_slot(sku, *jobs[job[0]][:2], job[1], job[2]),
            [(i, (record, framed), encodings) for i, framed in zip(mine, images, strict=True)],
            settings.threads,
        )
        done.update(zip(mine, made, strict=True))
    rendered = [done[i] for i in range(len(jobs))]
    _in_parallel(
        lambda item: store.put(item[0].key, item[1], _CONTENT_TYPES[item[0].format]),
        rendered,
        settings.threads,
    )
    return [output for output, _ in rendered]


def publish_manifest(
    prepared: PreparedProduct, outputs: list[OutputRecord], store: Store, settings: Settings
) -> ProductResult:
    """Write the manifest last: from now on readers trust this product."""
    specs = platforms_of(prepared.request, settings)
    manifest = Manifest(
        sku=prepared.request.sku,
        backend=prepared.backend,
        code_version=__version__,
        source=prepared.source,
        masters=prepared.masters,
        cutout=prepared.cutout,
        outputs=outputs,
        needs_review=prepared.needs_review,
        spec_versions={s.name: s.version for s in specs},
        calls=prepared.calls,
    )
    key = manifest_key(prepared.request.sku)
    store.put(key, manifest.model_dump_json(indent=2).encode(), "application/json")
    failed = [f"{o.platform}/{o.slot}" for o in outputs if not o.passed]
    notes = [f"checks failed: {', '.join(failed)}"] if failed else []
    if settings.stable_keys:
        notes += _copy_to_stable_keys(manifest, store, settings)
    return ProductResult(
        sku=prepared.request.sku,
        status="done",
        manifest_key=key,
        outputs=len(outputs),
        needs_review=bool(prepared.needs_review),
        review_reasons=[flag.text() for flag in prepared.needs_review],
        message="; ".join(notes),
        paid_calls=sum(c.outcome != "cached" for c in prepared.calls),
        cost_usd=manifest.cost_usd,
    )


def _copy_to_stable_keys(manifest: Manifest, store: Store, settings: Settings) -> list[str]:
    """Copy what the manifest lists to the fixed keys; a failure here unpublishes nothing."""

    def copy(key: str) -> None:
        target = stable_key(key)
        if target is not None:
            extension = key.rpartition(".")[2]
            store.copy(key, target, _CONTENT_TYPES.get(extension, "image/jpeg"))

    try:
        _in_parallel(copy, list(manifest.published_keys()), settings.threads)
    except StorageError as error:
        return [f"published, but the stable keys were not all updated: {error}"]
    return []


def failed_result(sku: str, error: ProductError) -> ProductResult:
    """How a product that could not be made is reported: over budget is 'skipped', a backend
    or store in trouble 'deferred' (see product_images.deferral), anything else 'failed'."""
    from product_images.deferral import is_deferred

    status: Literal["skipped", "deferred", "failed"] = "failed"
    if isinstance(error, BudgetExceededError):
        status = "skipped"
    elif is_deferred(error):
        status = "deferred"
    return ProductResult(sku=sku, status=status, reason=error.reason, message=str(error))


def make_product(
    request: ProductRequest, store: Store, settings: Settings, force: bool = False
) -> ProductResult:
    """One product end to end: skipped when nothing changed (unless `force`), otherwise
    prepare -> render -> publish. Its outcome is recorded for `failed`/`retry`; a product
    error is recorded, then raised. A store failure on the way becomes the product's
    StorageUnavailableError (deferred): the other products of the run go on."""
    from product_images.status import record_status

    check_sku(request.sku)
    try:
        try:
            result = _unchanged(request, store, settings, force) or _make(request, store, settings)
            record_status(store, request, result)
        except StorageError as error:
            raise StorageUnavailableError(f"{request.sku}: {error}") from error
    except ProductError as error:
        _record_failure(store, request, error)
        raise
    return result


def _unchanged(
    request: ProductRequest, store: Store, settings: Settings, force: bool
) -> ProductResult | None:
    from product_images.refresh import refresh_reasons

    if force or refresh_reasons(request, store, settings):
        return None
    return ProductResult(
        sku=request.sku, status="unchanged", manifest_key=manifest_key(request.sku)
    )


def _make(request: ProductRequest, store: Store, settings: Settings) -> ProductResult:
    """prepare -> render -> publish."""
    prepared = prepare_masters(request, store, settings)
    outputs = render_slots(prepared, store, settings)
    return publish_manifest(prepared, outputs, store, settings)


def _record_failure(store: Store, request: ProductRequest, error: ProductError) -> None:
    """Record the outcome for `failed`/`retry`, unless the store is what failed."""
    from product_images.status import record_status

    try:
        record_status(store, request, failed_result(request.sku, error))
    except StorageError:
        if not isinstance(error, StorageUnavailableError):
            raise


def run_product(
    request: ProductRequest, settings: Settings, store: Store | None = None, force: bool = True
) -> ProductResult:
    """The inline engine: the same steps as the Prefect flows, in this process; product errors
    become failed (or skipped, or deferred) results. A product deferred by its generative
    backend is tried again after the breaker's cool-down, `defer_retries` times at most."""
    from product_images.deferral import retry_deferred

    store = store or open_store(settings.store)
    target = store
    try:
        return retry_deferred(lambda: make_product(request, target, settings, force), settings)
    except ProductError as error:
        return failed_result(request.sku, error)


__all__ += ["failed_result", "make_product"]
