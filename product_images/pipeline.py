"""The steps of one product, Prefect-free: prepare masters -> render slots -> publish.

Each step takes and returns small models (keys, records), never pixels, so the same functions
serve the Prefect tasks in `tasks/` and the inline engine. What runs them (refresh checks,
status records, deferral and retries) is the layer above, `product_images.runner`.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from product_images import __version__
from product_images.backends import MasterBackend, MasterContext, ProductCutout, route
from product_images.errors import (
    MissingSourceError,
    NoProductFoundError,
    ObjectNotFoundError,
    RenderError,
    StorageError,
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
)
from product_images.native_threads import single_threaded_blas
from product_images.preload import platform_table, segmenter_of
from product_images.request import ProductRequest, check_sku
from product_images.settings import Settings
from product_images.specs import PlatformSpec, ShadowSpec, SlotSpec, Variant, select_platforms
from product_images.store import Store, read_url
from product_images.store.layout import master_key, output_key
from product_images.wiring import Wiring

if TYPE_CHECKING:
    from product_images.backends.generative import GenerativeBackend

__all__ = [
    "MasterImages",
    "PreparedProduct",
    "cut_out",
    "load_source",
    "platforms_of",
    "prepare_masters",
    "publish_manifest",
    "render_slots",
]

_T = TypeVar("_T")
_R = TypeVar("_R")
_CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
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


def platforms_of(request: ProductRequest, settings: Settings) -> list[PlatformSpec]:
    """The validated specs of the platforms a request asks for."""
    chosen = request.platforms or settings.imaging.platforms
    return select_platforms(platform_table(settings), chosen)


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
        data,
        request.source,
        max_pixels=settings.sources.max_pixels,
        min_side=settings.sources.min_side,
    )


def _decode_and_cut(
    data: bytes, request: ProductRequest, settings: Settings
) -> tuple[SourceInfo, ProductCutout]:
    """The source decoded and cut out: pixels only, no I/O (a worker process's job)."""
    source = _decode(data, request, settings)
    return _source_info(request, source), cut_out(source, request.source, settings)


def _cut_product(request: ProductRequest, wiring: Wiring) -> tuple[SourceInfo, ProductCutout]:
    """The source read here (I/O, credentials), then decoded and cut out in a pixel worker
    process when the run has them."""
    settings = wiring.settings
    data = _read_source(request, settings)
    pool = wiring.pixels()
    if pool is None:
        return _decode_and_cut(data, request, settings)
    return pool.run(_decode_and_cut, data, request, settings)


def cut_out(source: SourceImage, name: str, settings: Settings) -> ProductCutout:
    """The product's cut-out: a transparent source is trusted, anything else segmented."""
    rgba = source.image
    if source.has_alpha:
        alpha = np.asarray(rgba.getchannel("A"))
        cut: Cutout = cutout_from_alpha(alpha)
        return ProductCutout(np.asarray(rgba.convert("RGB")), cut)
    cut = segment_product(rgba, settings.imaging.working_side, segmenter_of(settings))
    if not cut.alpha.any():
        detail = "; ".join(cut.reasons) or "no product found"
        raise NoProductFoundError(name, f"cannot separate a product from the background ({detail})")
    return ProductCutout(np.asarray(rgba.convert("RGB")), cut)


def _review_flags(
    step: str, confidence: float, reasons: tuple[str, ...], settings: Settings
) -> list[ReviewFlag]:
    if confidence >= settings.imaging.review_threshold:
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
    key = master_key(sku, name, sha256)
    store.put(key, data, "image/png")
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
    key = master_key(sku, "cutout", sha256)
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


def prepare_masters(
    request: ProductRequest, wiring: Wiring, images: MasterImages | None = None
) -> PreparedProduct:
    """Load the source, cut the product out, and store one master per needed variant (and
    keep their images in `images` for `render_slots`, when given)."""
    single_threaded_blas()
    variants = _variants(request, wiring.settings)
    generative = wiring.generative(request.backend)
    if generative is not None and set(variants) - {"white"}:
        generative.check_available()  # during an outage, defer before the pixel work
    source, product = _cut_product(request, wiring)
    maker = _MasterMaker(request, wiring, product, _context(request, source, wiring), images)
    maker.choose_backends(variants, generative)
    with ThreadPoolExecutor(max_workers=1) as side:  # the big RGBA PNG beside the masters
        cutout = side.submit(_store_cutout, wiring.store, request.sku, product)
        made = _in_parallel(maker.make, variants, wiring.settings.running.threads)
        cutout_record = cutout.result()
    return maker.prepared(source, made, cutout_record)


def _context(request: ProductRequest, source: SourceInfo, wiring: Wiring) -> MasterContext:
    """What the backends may need beyond pixels; the run's cap unless the request has one."""
    cap = request.budget_usd
    return MasterContext(
        sku=check_sku(request.sku),
        source_sha256=source.sha256,
        store=wiring.store,
        fields=request.prompt_fields(),
        run_id=request.run_id or uuid.uuid4().hex,  # no run given: a run of its own
        tag=request.tag,
        budget_usd=cap if cap is not None else wiring.settings.generation.budget_usd,
    )


_Made = tuple[list[MasterRecord], list[ReviewFlag]]


class _MasterMaker:
    """Makes and stores one product's masters, a variant at a time (on several threads)."""

    def __init__(
        self,
        request: ProductRequest,
        wiring: Wiring,
        product: ProductCutout,
        context: MasterContext,
        images: MasterImages | None,
    ) -> None:
        self.request, self.wiring, self.product = request, wiring, product
        self.context, self.images = context, images
        self.settings = wiring.settings
        self.slots = [s for p in platforms_of(request, self.settings) for s in p.slots]
        self.backends: dict[Variant, MasterBackend] = {}

    def choose_backends(
        self, variants: list[Variant], generative: GenerativeBackend | None
    ) -> None:
        """Which backend makes each variant; refuses before any work what the budget cannot pay."""
        confidence = self.product.cutout.confidence
        self.backends = {v: route(v, confidence, generative, self.settings) for v in variants}
        if generative is not None:
            paid = [v for v, b in self.backends.items() if b is generative]
            generative.check_affordable(paid, self.settings, self.context)

    def make(self, variant: Variant) -> _Made:
        backend = self.backends[variant]
        master = backend.make_master(variant, self.product, self.settings, self.context)
        records = self._store(variant, master, backend)
        flags = _review_flags(variant, master.confidence, master.reasons, self.settings)
        if master.digital_source_type != TRAINED_ALGORITHMIC_MEDIA:  # the cut-out's pixels
            confidence = min(master.confidence, self.product.cutout.confidence)  # its doubts
            records = [r.model_copy(update={"confidence": confidence}) for r in records]
        return records, flags

    def _store(
        self, variant: Variant, master: Master, backend: MasterBackend
    ) -> list[MasterRecord]:
        """Every take of the master (its looks, then its alternates), each made (a shadow, a
        crop) and stored on the run's threads: the white master's three takes no longer wait
        for one another (the PNG encoder and OpenCV release the GIL)."""
        looks = _looks(variant, master, [s for s in self.slots if s.variant == variant])
        if variant == "detail":
            looks += _detail_looks(backend, self.slots, self.product, self.settings, self.context)
        take = partial(self._store_look, variant, backend)
        stored = _in_parallel(take, looks, self.settings.running.threads)
        shown = [record for record in stored if record is not None]
        return shown + [
            _store_master(self.wiring.store, self.request.sku, variant, other, backend.name, rank=r)
            for r, other in enumerate(master.alternates, 1)
        ]

    def _store_look(
        self, variant: Variant, backend: MasterBackend, named: _Look
    ) -> MasterRecord | None:
        """One look made and stored (and kept for rendering); None when it cannot be made."""
        key, make = named
        look = make()
        if look is None:
            return None
        store, sku = self.wiring.store, self.request.sku
        record = _store_master(store, sku, variant, look, backend.name, key)
        if self.images is not None:
            self.images.keep(record.key, record.sha256, look.image)
        return record

    def prepared(
        self, source: SourceInfo, made: list[_Made], cutout: MasterRecord
    ) -> PreparedProduct:
        records = [record for records, _ in made for record in records]
        uses_cutout = any(r.digital_source_type != TRAINED_ALGORITHMIC_MEDIA for r in records)
        cut = self.product.cutout
        flags = _review_flags("cutout", cut.confidence, cut.reasons, self.settings)
        return PreparedProduct(
            request=self.request,
            source=source,
            backend=", ".join(sorted({r.backend for r in records})),
            masters=records,
            cutout=cutout,
            needs_review=(flags if uses_cutout else []) + [f for _, fs in made for f in fs],
            calls=list(self.context.calls),
        )


def _variants(request: ProductRequest, settings: Settings) -> list[Variant]:
    """The masters to make: what the platforms' slots show, narrowed to `request.variants`."""
    needed = {v for p in platforms_of(request, settings) for v in p.variants()}
    chosen = needed & set(request.variants) if request.variants else needed
    if not chosen:
        raise RenderError(
            f"none of the variants {request.variants} is shown by the platforms "
            f"{request.platforms or settings.imaging.platforms}"
        )
    return sorted(chosen)


_Look = tuple[str, Callable[[], Master | None]]


def _looks(variant: Variant, master: Master, slots: list[SlotSpec]) -> list[_Look]:
    """The takes of a master to store, by look, each with how to make it: the plain one
    (kept whatever the slots want), and for white slots one per distinct shadow."""
    shadows: dict[str, ShadowSpec] = {
        s.shadow_key(): s.shadow for s in slots if s.shadow is not None
    }
    plain: _Look = ("", lambda: master)
    return [plain] + [(key, partial(with_shadow, master, spec)) for key, spec in shadows.items()]


def _detail_looks(
    backend: MasterBackend,
    slots: list[SlotSpec],
    product: ProductCutout,
    settings: Settings,
    context: MasterContext,
) -> list[_Look]:
    """Detail masters cropped at each non-square detail slot's aspect, where the backend
    crops them itself (otherwise, when it gives None, those slots crop the square master)."""
    aspects = {s.master_look(): s.aspect_ratio() for s in slots if s.variant == "detail"}
    return [
        (look, partial(backend.detail_at, aspect, product, settings, context))
        for look, aspect in aspects.items()
        if look
    ]


def _source_info(request: ProductRequest, source: SourceImage) -> SourceInfo:
    return SourceInfo(
        key=request.source,
        sha256=source.sha256,
        width=source.image.width,
        height=source.image.height,
        format=source.format,
        notes=list(source.notes),
    )


class MasterImages:
    """The masters one product's run just made, so rendering does not decode what preparing
    just encoded. The runner makes one per product and hands it to both steps; the Prefect
    steps, which may run apart, pass none and read the store. Keyed by key and checksum, so a
    stale image can never be used."""

    def __init__(self) -> None:
        self._images: dict[tuple[str, str], Image.Image] = {}

    def keep(self, key: str, sha256: str, image: Image.Image) -> None:
        self._images[(key, sha256)] = image

    def take(self, record: MasterRecord) -> Image.Image | None:
        """The image of `record` if this run made it (once: it is then let go)."""
        return self._images.pop((record.key, record.sha256), None)


def _open_master(store: Store, record: MasterRecord, images: MasterImages | None) -> Image.Image:
    made = images.take(record) if images is not None else None
    if made is not None:
        return made
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
    key = output_key(sku, platform.name, f"{slot.name}.{slot.extension}", sha256)
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


def render_slots(
    prepared: PreparedProduct, wiring: Wiring, images: MasterImages | None = None
) -> list[OutputRecord]:
    """Every slot of every requested platform, each master decoded once, each slot checked.

    All slots are rendered before any is stored, so a slot that cannot be made (e.g. an
    impossible byte budget) leaves the product's published outputs untouched. A master's slots
    are framed together (`frame_slots`: equal framings as one chain, largest first) and equal
    images encoded once; one master's framed images are in memory at a time.
    """
    single_threaded_blas()
    store, settings = wiring.store, wiring.settings
    masters = {
        (m.variant, m.look): (m, _open_master(store, m, images))
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
        framings = frame_slots(
            image,
            record.product_box,
            [jobs[i][1] for i in mine],
            lambda call, chains: _in_parallel(call, chains, settings.running.threads),
        )
        encodings = SharedEncodings()
        made = _in_parallel(
            lambda job: _render_slot(sku, *jobs[job[0]][:2], job[1], job[2]),
            [(i, (record, framed), encodings) for i, framed in zip(mine, framings, strict=True)],
            settings.running.threads,
        )
        done.update(zip(mine, made, strict=True))
    rendered = [done[i] for i in range(len(jobs))]
    _in_parallel(
        lambda item: store.put(item[0].key, item[1], _CONTENT_TYPES[item[0].format]),
        rendered,
        settings.running.threads,
    )
    return [output for output, _ in rendered]


def publish_manifest(
    prepared: PreparedProduct, outputs: list[OutputRecord], wiring: Wiring
) -> ProductResult:
    """Write the manifest last: from now on readers trust this product."""
    store, settings = wiring.store, wiring.settings
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
    if settings.store.stable_keys:
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
        _in_parallel(copy, list(manifest.published_keys()), settings.running.threads)
    except StorageError as error:
        return [f"published, but the stable keys were not all updated: {error}"]
    return []
