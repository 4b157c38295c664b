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

from product_images.backends.base import MasterBackend, MasterContext, ProductCutout
from product_images.generative.base import (
    Attempt,
    AttemptHooks,
    GenerationRequest,
    ImageGenerator,
    ImageInput,
)
from product_images.generative.budget import budget_for
from product_images.generative.cache import GenerationCache, cache_key
from product_images.generative.ledger import Ledger, entry_from
from product_images.generative.templates import load_template
from product_images.imaging.compose import Master, compose_white, decontaminate
from product_images.imaging.fidelity import product_similarity
from product_images.imaging.segment import segment_product
from product_images.locks import store_lock
from product_images.manifest import CallRecord
from product_images.settings import Settings
from product_images.specs import Variant
from product_images.store import read_url

__all__ = ["GenerativeBackend", "estimate_cost"]

_INPUT_SIDE = 1536  # longest side of the photo sent: plenty for the model, few input tokens
# Worst-case output tokens per image (../shared/reference §1.4), for budget reservations.
_OUTPUT_TOKENS = {"512": 747, "1K": 1290, "2K": 1680, "4K": 2520, None: 1290}
_OPENAI_OUTPUT_TOKENS = 6240  # gpt-image-1 at high quality, 1536 px


def estimate_cost(generator: ImageGenerator, settings: Settings, prompt: str, images: int) -> float:
    """The most one call could cost: what the budget reserves before the call is made."""
    price = settings.prices.get(generator.model)
    if price is None:
        return 0.0
    output = (
        _OPENAI_OUTPUT_TOKENS
        if generator.name == "openai"
        else _OUTPUT_TOKENS.get(settings.gemini_image_size, 2520)
    )
    return price.cost(1290 * images + len(prompt) // 3 + 64, output)


def _references(variant: str, settings: Settings) -> tuple[ImageInput, ...]:
    """Reference images for a variant: the configured scene background, for scenes."""
    if variant != "scene" or not settings.scene_background:
        return ()
    return (_reference(settings.scene_background),)


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
    """Masters from an ImageGenerator (Gemini or an OpenAI-compatible API)."""

    def __init__(self, generator: ImageGenerator) -> None:
        self.generator = generator
        self.name = generator.name

    def check_available(self) -> None:
        """Raise BackendUnavailableError while the API's circuit breaker is open."""
        self.generator.check_available()

    def make_master(
        self, variant: Variant, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> Master:
        """Generate, post-process and check the master; regenerate on drift, within limits."""
        template = load_template(variant, settings.templates_dir)
        request = self.request_for(variant, product, settings, context)
        master: Master | None = None
        for attempt in range(settings.max_regenerations + 1):
            key = self._cache_key(variant, settings, context, attempt)
            data = self._image(key, request, variant, settings, context)
            master = _postprocess(data, variant, product, settings, self.generator.model)
            master = replace(master, template_sha256=template.sha256)
            if master.confidence >= settings.fidelity_threshold:
                return master
        assert master is not None
        reason = f"generated product drifted from the source (similarity {master.confidence:.2f})"
        return replace(master, reasons=(*master.reasons, reason))

    def request_for(
        self, variant: str, product: ProductCutout, settings: Settings, context: MasterContext
    ) -> GenerationRequest:
        """What is sent for one master: the rendered template, the photo, any references."""
        prompt = load_template(variant, settings.templates_dir).render(context.fields)
        inputs = (_photo_input(product.rgb), *_references(variant, settings))
        if len(inputs) > 1:
            prompt += "\nUse the second image as the background and style reference for the scene."
        return GenerationRequest(prompt, inputs, "1:1", settings.gemini_image_size)

    def first_take_key(self, variant: str, settings: Settings, context: MasterContext) -> str:
        """The cache key of a master's first generation (what a batch pre-fills)."""
        return self._cache_key(variant, settings, context, 0)

    def _cache_key(
        self, variant: str, settings: Settings, context: MasterContext, take: int
    ) -> str:
        """Everything that decides the image: source, prompt and template, model, parameters."""
        template = load_template(variant, settings.templates_dir)
        return cache_key(
            {
                "source": context.source_sha256,
                "prompt": template.render(context.fields),
                "template": template.sha256,
                "backend": self.name,
                "model": self.generator.model,
                "variant": variant,
                "aspect": "1:1",
                "size": settings.gemini_image_size,
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
        budget = budget_for(context.run_id, context.budget_usd)
        estimate = len(paid) * estimate_cost(self.generator, settings, "x" * 1500, 1)
        budget.reserve(estimate)
        budget.settle(estimate, 0.0)

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
            # Workers racing on one image: the lock holder pays, the others wait for its entry.
            ttl = settings.request_timeout * settings.max_attempts + 60
            with store_lock(context.store, f"gen-{key}", ttl=ttl, done=lambda: cache.has(key)):
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
        budget = budget_for(context.run_id, context.budget_usd)
        estimate = estimate_cost(self.generator, settings, request.prompt, len(request.images))
        ledger = Ledger(context.store)

        def after(attempt: Attempt) -> None:
            entry = entry_from(attempt, context.sku, variant, context.tag, settings.prices)
            budget.settle(estimate, entry.cost_usd)
            ledger.append(entry)
            context.calls.append(
                CallRecord(**entry.model_dump(include=set(CallRecord.model_fields)))
            )

        return AttemptHooks(before=lambda: budget.reserve(estimate), after=after)


def _postprocess(
    data: bytes, variant: Variant, product: ProductCutout, settings: Settings, model: str
) -> Master:
    """Decode, re-frame to the master's square, force white; score fidelity."""
    with Image.open(io.BytesIO(data)) as decoded:
        image = decoded.convert("RGB")
    notes = []
    if abs(image.width / image.height - 1.0) > 0.01:  # some relays drop aspectRatio
        notes.append(f"model returned {image.width}x{image.height} for 1:1; re-framed locally")
    side = settings.master_side
    if variant == "white":
        master = _force_white(image, side, settings.master_fill)
    else:
        master = _square(image, side, full_box=variant == "detail")
    cut = product.cutout
    similarity = product_similarity(product.rgb, cut.alpha, cut.box, image, variant)
    return replace(master, confidence=similarity, generated_by=model, notes=tuple(notes))


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
