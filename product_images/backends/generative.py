"""Masters from a generative image model, made cheap and safe.

Each master: prompt from the variant's template and the catalog row -> content-addressed cache
(a hit costs nothing) -> otherwise a paid call, budget-checked and written to the ledger ->
post-processing (re-framed to the master's square, white forced to pure #FFFFFF) -> fidelity
guard against the source product, with a bounded number of regenerations.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np
from PIL import Image

from product_images.backends.backdrops import backdrop_urls
from product_images.backends.base import MasterBackend, MasterContext, ProductCutout
from product_images.backends.local import LocalBackend
from product_images.generative.base import (
    Attempt,
    AttemptHooks,
    GenerationRequest,
    ImageGenerator,
    ImageInput,
)
from product_images.generative.budget import Reservation, RunBudget
from product_images.generative.cache import GenerationCache, cache_key
from product_images.generative.configured_model import price_table
from product_images.generative.ledger import Ledger, entry_from
from product_images.generative.templates import load_template
from product_images.imaging.compose import Master, compose_white, decontaminate
from product_images.imaging.fidelity import product_similarity
from product_images.imaging.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
)
from product_images.imaging.segment import segment_product
from product_images.locks import store_lock
from product_images.manifest import CallRecord
from product_images.model_catalogue import ModelChoice
from product_images.settings import Settings
from product_images.specs import Variant
from product_images.store import read_url

__all__ = ["GenerativeBackend", "estimate_cost"]

_INPUT_SIDE = 1536  # longest side of the photo sent: plenty for the model, few input tokens
_INPUT_IMAGE_TOKENS = 1290  # what one input image is billed as, at most (§1.4)
_UNKNOWN_OUTPUT_TOKENS = 2520  # a priced (PRODUCT_IMAGES_PRICES) but uncatalogued model: 4K


def estimate_cost(choice: ModelChoice, settings: Settings, prompt: str, images: int) -> float:
    """The most one call could cost, from the model catalogue: what the budget reserves
    before the call is made (0 for a model the catalogue does not price)."""
    price = price_table(settings, choice).get(choice.model)
    if price is None:
        return 0.0
    size = choice.billed
    tokens_in = _INPUT_IMAGE_TOKENS * images + len(prompt) // 3 + 64
    by_tokens = price.cost(tokens_in, size.tokens if size else _UNKNOWN_OUTPUT_TOKENS)
    return max(by_tokens, price.cost(tokens_in, 0) + (size.usd if size else 0.0))


def _template_name(variant: str, settings: Settings) -> str:
    """The prompt template of a variant: 'backdrop' for scenes composited on a generated set."""
    return (
        "backdrop"
        if variant == "scene" and settings.generation.generated_scene == "backdrop"
        else variant
    )


def _references(variant: str, settings: Settings) -> tuple[ImageInput, ...]:
    """Reference images for a variant: the configured scene background, for scenes."""
    if variant != "scene" or not settings.imaging.scene_background:
        return ()
    photos = backdrop_urls(settings.imaging.scene_background)
    return (_reference(photos[0]),) if photos else ()


@lru_cache(maxsize=4)
def _reference(url: str) -> ImageInput:
    with Image.open(io.BytesIO(read_url(url))) as image:
        return _photo_input(np.asarray(image.convert("RGB")))


def _photo_input(rgb: np.ndarray) -> ImageInput:
    image = Image.fromarray(rgb)
    image.thumbnail((_INPUT_SIDE, _INPUT_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return ImageInput(buffer.getvalue(), "image/jpeg")


class GenerativeBackend(MasterBackend):
    """Masters from an ImageGenerator (Gemini or an OpenAI-compatible API), its model's
    sizes, prices and warnings from the model catalogue (`choice`)."""

    def __init__(self, generator: ImageGenerator, choice: ModelChoice) -> None:
        self.generator = generator
        self.choice = choice
        self.name = generator.name

    def check_available(self) -> None:
        """Raise BackendUnavailableError while the API's circuit breaker is open."""
        self.generator.check_available()

    def make_master(
        self, variant: Variant, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> Master:
        """Generate, post-process and check the master; regenerate on drift, within limits."""
        template = load_template(
            _template_name(variant, settings), settings.generation.templates_dir
        )
        request = self.request_for(variant, product, settings, context)
        if template.variant == "backdrop":
            return self._composite_scene(request, product, settings, context, template.sha256)
        master: Master | None = None
        for attempt in range(settings.generation.max_regenerations + 1):
            key = self._cache_key(variant, settings, context, attempt)
            data = self._image(key, request, variant, settings, context)
            master = _postprocess(data, variant, product, settings, self.generator.model)
            notes = (*master.notes, *self.choice.warnings)
            master = replace(master, template_sha256=template.sha256, notes=notes)
            if master.confidence >= settings.generation.fidelity_threshold:
                return master
        assert master is not None
        reason = f"generated product drifted from the source (similarity {master.confidence:.2f})"
        return replace(master, reasons=(*master.reasons, reason))

    def request_for(
        self, variant: str, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> GenerationRequest:
        """What is sent for one master: the rendered template, the photo, any references (as
        many as the model takes, per the catalogue)."""
        template = load_template(
            _template_name(variant, settings), settings.generation.templates_dir
        )
        prompt = template.render(context.fields)
        inputs = (_photo_input(product.rgb), *_references(variant, settings))
        if self.choice.entry is not None:
            inputs = inputs[: self.choice.entry.max_reference_images]
        if len(inputs) > 1:
            prompt += "\nUse the second image as the background and style reference for the scene."
        return GenerationRequest(prompt, inputs, "1:1", self.choice.image_size)

    def _composite_scene(
        self,
        request: GenerationRequest,
        product: ProductCutout,
        settings: Settings,
        context: MasterContext,
        template_sha256: str,
    ) -> Master:
        """A generated, empty backdrop with the real product's cut-out standing in it: the
        product's pixels are the photo's, so no fidelity check or regeneration is needed."""
        data = self._image(
            self._cache_key("scene", settings, context, 0), request, "scene", settings, context
        )
        with Image.open(io.BytesIO(data)) as decoded:
            backdrop = decoded.convert("RGB")
        master = LocalBackend().scene(product, settings, context, backdrop)
        return replace(
            master,
            generated_by=self.generator.model,
            digital_source_type=COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
            template_sha256=template_sha256,
            notes=("real product composited on a generated backdrop", *self.choice.warnings),
        )

    def first_take_key(self, variant: str, settings: Settings, context: MasterContext) -> str:
        """The cache key of a master's first generation (what a batch pre-fills)."""
        return self._cache_key(variant, settings, context, 0)

    def _cache_key(
        self, variant: str, settings: Settings, context: MasterContext, take: int
    ) -> str:
        """Everything that decides the image: source, prompt and template, model, parameters."""
        template = load_template(
            _template_name(variant, settings), settings.generation.templates_dir
        )
        return cache_key(
            {
                "source": context.source_sha256,
                "prompt": template.render(context.fields),
                "template": template.sha256,
                "backend": self.name,
                "model": self.generator.model,
                "variant": variant,
                "aspect": "1:1",
                "size": self.choice.image_size,
                "take": take,
                "references": [
                    hashlib.sha256(r.data).hexdigest() for r in _references(variant, settings)
                ],
            }
        )

    def check_affordable(
        self, variants: Sequence[str], settings: Settings, context: MasterContext
    ) -> None:
        """Refuse a product whose uncached masters could not all be paid for, before any call:
        a half-generated product would be money spent on nothing."""
        cache = GenerationCache(context.store)
        paid = [v for v in variants if not cache.has(self._cache_key(v, settings, context, 0))]
        if not paid:
            return
        budget = RunBudget(context.store, context.run_id, context.budget_usd)
        budget.check(len(paid) * estimate_cost(self.choice, settings, "x" * 1500, 1))

    def _image(
        self,
        key: str,
        request: GenerationRequest,
        variant: str,
        settings: Settings,
        context: MasterContext,
    ) -> bytes:
        cache = GenerationCache(context.store)
        hit = cache.get(key)
        if hit is None:
            # Workers racing on one image: the lock holder pays, the others wait for its entry
            # as long as a live holder's call may take.
            wait = settings.limits.request_timeout * settings.limits.max_attempts + 60
            with store_lock(context.store, f"gen-{key}", wait=wait, done=lambda: cache.has(key)):
                hit = cache.get(key)
                if hit is None:
                    return self._generate(key, request, variant, settings, context)
        context.calls.append(
            CallRecord(
                variant=variant, backend=self.name, model=self.generator.model, outcome="cached"
            )
        )
        return hit.data

    def _generate(
        self,
        key: str,
        request: GenerationRequest,
        variant: str,
        settings: Settings,
        context: MasterContext,
    ) -> bytes:
        """A paid call, its image cached for every later run and worker."""
        cache = GenerationCache(context.store)
        result = self.generator.generate(request, self._hooks(request, variant, settings, context))
        cache.put(
            key,
            result.image,
            {
                "mime_type": result.mime_type,
                "model": result.model,
                "prompt_tokens": result.usage.prompt_tokens,
                "output_tokens": result.usage.output_tokens,
            },
        )
        return result.image

    def _hooks(
        self, request: GenerationRequest, variant: str, settings: Settings, context: MasterContext
    ) -> AttemptHooks:
        budget = RunBudget(context.store, context.run_id, context.budget_usd)
        estimate = estimate_cost(self.choice, settings, request.prompt, len(request.images))
        ledger = Ledger(context.store)
        prices = price_table(settings, self.choice)
        held: list[Reservation] = []  # the attempt in flight's reservation

        def before() -> None:
            held.append(budget.reserve(estimate))

        def after(attempt: Attempt) -> None:
            entry = entry_from(attempt, context.sku, variant, context.tag, prices)
            ledger.append(entry)  # the record first: money spent is never unrecorded
            budget.settle(held.pop(), entry.cost_usd)
            context.calls.append(
                CallRecord(**entry.model_dump(include=set(CallRecord.model_fields)))
            )

        return AttemptHooks(before=before, after=after)


def _postprocess(
    data: bytes, variant: Variant, product: ProductCutout, settings: Settings, model: str
) -> Master:
    """Decode, re-frame to the master's square, force white; score fidelity."""
    with Image.open(io.BytesIO(data)) as decoded:
        image = decoded.convert("RGB")
    notes = []
    if abs(image.width / image.height - 1.0) > 0.01:  # some relays drop aspectRatio
        notes.append(f"model returned {image.width}x{image.height} for 1:1; re-framed locally")
    side = settings.imaging.master_side
    if variant == "white":
        master = _force_white(image, side, settings.imaging.master_fill)
    else:
        master = _square(image, side, full_box=variant == "detail")
    cut = product.cutout
    similarity = product_similarity(product.rgb, cut.alpha, cut.box, image, variant)
    return replace(
        master,
        confidence=similarity,
        generated_by=model,
        digital_source_type=TRAINED_ALGORITHMIC_MEDIA,
        notes=tuple(notes),
    )


def _force_white(image: Image.Image, side: int, fill: float) -> Master:
    """Whatever the model's 'white' was, the product goes on exactly #FFFFFF at the fill."""
    rgb = np.asarray(image)
    cut = segment_product(image)
    if not cut.alpha.any():
        return Master(
            image.resize((side, side)),
            (0, 0, side, side),
            0.0,
            ("no product in the generated image",),
        )
    clean = decontaminate(rgb, cut.alpha, cut.background_rgb)
    return compose_white(clean, cut.alpha, cut.box, side, fill)


def _square(image: Image.Image, side: int, full_box: bool) -> Master:
    """Centre-crop to a square and scale; the product is assumed central (scenes) or everywhere
    (details)."""
    short = min(image.size)
    left, top = (image.width - short) // 2, (image.height - short) // 2
    square = image.resize(
        (side, side), Image.Resampling.LANCZOS, box=(left, top, left + short, top + short)
    )
    quarter = side // 4
    box = (0, 0, side, side) if full_box else (quarter, quarter, side - quarter, side - quarter)
    return Master(square, box, 1.0)
