"""The one typed settings object, read once from the environment (prefix PRODUCT_IMAGES_).

Every knob has a default and a description; `product-images settings` prints them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from product_images.model_catalogue.catalog import ModelPrice, load_catalog
from product_images.specs import BUILTIN_SPECS_DIR

__all__ = ["ModelPrice", "Settings", "get_settings"]


class Settings(BaseSettings):
    """Pipeline configuration. Environment variables: PRODUCT_IMAGES_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="PRODUCT_IMAGES_", extra="ignore")

    store: str = Field(
        default="./out",
        description="Where outputs go: a local folder or s3://bucket/prefix.",
    )
    stable_keys: bool = Field(
        default=True,
        description="After a product's manifest is published, also copy each output and master "
        "to its fixed key (SKU/amazon/main.jpg, SKU/masters/cutout.png) for shops that want "
        "stable URLs. The manifest lists the checksummed keys (main.<sha12>.jpg), which a run "
        "never overwrites; only those are guaranteed to match it.",
    )
    gc_grace_seconds: float = Field(
        default=3600,
        ge=0,
        description="`product-images gc` leaves unlisted objects younger than this alone: they "
        "may belong to a run still in progress.",
    )
    specs_dir: Path | None = Field(
        default=None,
        description="Extra directory of platform spec YAML files (overrides built-ins by name).",
    )
    platforms: list[str] = Field(
        default_factory=lambda: ["amazon", "shopify", "instagram"],
        description="Platforms rendered when none are given.",
    )
    backend: Literal["auto", "local", "gemini", "openai"] = Field(
        default="auto",
        description="Backend for generated masters: 'auto' uses Gemini when GEMINI_API_KEY is "
        "set, else an OpenAI-compatible API when OPENAI_API_KEY is set, else the offline "
        "local backend.",
    )
    gemini_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("GEMINI_API_KEY", "PRODUCT_IMAGES_GEMINI_API_KEY"),
        description="Gemini API key (env GEMINI_API_KEY). Never logged or stored.",
    )
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com",
        validation_alias=AliasChoices("GEMINI_BASE_URL", "PRODUCT_IMAGES_GEMINI_BASE_URL"),
        description="Gemini API root (env GEMINI_BASE_URL): set it for relays and proxies.",
    )
    model_catalogue_dir: Path | None = Field(
        default=None,
        description="Directory of generative model catalogue files (gemini.yaml, openai.yaml) "
        "replacing "
        "the built-in ones: model ids, status and dates, image sizes, prices and Batch "
        "discounts. Costs, imageSize, warnings and the default model come from them.",
    )
    gemini_model: str = Field(
        default="",
        validation_alias=AliasChoices("GEMINI_MODEL", "PRODUCT_IMAGES_GEMINI_MODEL"),
        description="Gemini image model id (env GEMINI_MODEL); empty = the catalogue's default "
        "(gemini-3-pro-image). A deprecated id warns, a shut-down one fails with the ids to use.",
    )
    gemini_auth: Literal["header", "bearer"] = Field(
        default="header",
        description="How the key is sent: 'header' (x-goog-api-key, Google's API) or "
        "'bearer' (Authorization: Bearer, common for relays).",
    )
    gemini_image_size: Literal["512", "1K", "2K", "4K"] | None = Field(
        default="2K",
        description="imageConfig.imageSize for models that take it (the catalogue says which "
        "and which sizes); a size the model lacks becomes the next one up, with a warning.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "PRODUCT_IMAGES_OPENAI_API_KEY"),
        description="Key for the OpenAI-compatible images API (env OPENAI_API_KEY).",
    )
    gemini_api_key_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the Gemini API key, read by the "
        "flows and tasks when GEMINI_API_KEY is not set (workers then need no key in their "
        "environment).",
    )
    openai_api_key_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the OpenAI-compatible API key, "
        "read by the flows and tasks when OPENAI_API_KEY is not set.",
    )
    openai_base_url: str = Field(
        default="https://api.openai.com",
        validation_alias=AliasChoices("OPENAI_BASE_URL", "PRODUCT_IMAGES_OPENAI_BASE_URL"),
        description="OpenAI-compatible API root (env OPENAI_BASE_URL); /v1/images/edits is used.",
    )
    openai_model: str = Field(
        default="",
        validation_alias=AliasChoices("OPENAI_MODEL", "PRODUCT_IMAGES_OPENAI_MODEL"),
        description="Model for /v1/images/edits (env OPENAI_MODEL); empty = the catalogue's "
        "default (gpt-image-1).",
    )
    http_proxy: str | None = Field(
        default=None, description="HTTP(S) proxy URL for generative API calls."
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect.")
    request_timeout: float = Field(
        default=180.0, gt=0, description="Seconds to wait for a generated image."
    )
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per generation, retries of 429/5xx included."
    )
    retry_base_delay: float = Field(
        default=1.0, ge=0, description="First backoff delay (s); doubles per retry, with jitter."
    )
    retry_max_delay: float = Field(
        default=60.0, ge=0, description="Longest backoff delay (s), RetryInfo hints included."
    )
    breaker_failures: int = Field(
        default=5,
        ge=1,
        description="Outage failures (5xx, failed connections, timeouts) of one backend and "
        "model within breaker_window seconds, at least breaker_failure_rate of its calls, after "
        "which its circuit breaker opens: no more calls, waiting products are deferred. 429s "
        "never open it (they lower the adaptive rate instead).",
    )
    breaker_failure_rate: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the calls in the breaker's window that must have failed with "
        "5xx or timeouts for it to open: an outage, not the odd 503 of a busy service.",
    )
    breaker_window: float = Field(
        default=60.0,
        gt=0,
        description="Seconds of recent calls the circuit breaker judges the failure rate on.",
    )
    breaker_cooldown: float = Field(
        default=30.0,
        gt=0,
        description="Seconds an open circuit breaker waits before letting one probe call "
        "through; the probe's answer (a 429 too) closes it, its failure opens it again.",
    )
    adaptive_rate: bool = Field(
        default=True,
        description="Lower the request rate to a generative backend on each 429 and raise it "
        "again on successes (like botocore's adaptive retry mode), under <backend>_rpm.",
    )
    defer_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Times a deferred product is tried again within the same run, each after "
        "the breaker's cool-down (Prefect task retries, or the inline engine's loop).",
    )
    gemini_rpm: float = Field(
        default=300.0,
        gt=0,
        description="Gemini requests per minute, across all workers (a Prefect global rate "
        "limit when a Prefect API is configured, else per process); bursts of up to 10 "
        "seconds' worth. Google no longer publishes the image models' limits: set your "
        "project's (AI Studio shows it).",
    )
    gemini_concurrency: int = Field(
        default=8,
        ge=1,
        description="Gemini requests in flight at once, across all workers (a Prefect global "
        "concurrency limit when a Prefect API is configured, else per process).",
    )
    openai_rpm: float = Field(
        default=300.0,
        gt=0,
        description="Requests per minute to the OpenAI-compatible API, like gemini_rpm.",
    )
    openai_concurrency: int = Field(
        default=8,
        ge=1,
        description="Requests in flight at once to the OpenAI-compatible API, like "
        "gemini_concurrency.",
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="Price overrides by model id (USD per million input / output tokens); "
        "prices otherwise come from the model catalogue. Costs are computed from the usage "
        "the API reports.",
    )
    batch_poll_initial: float = Field(
        default=10.0, gt=0, description="First wait (s) between Batch API polls; doubles."
    )
    batch_poll_max: float = Field(
        default=300.0, gt=0, description="Longest wait between Batch API polls (s)."
    )
    batch_timeout: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="How long a refresh waits for its batch jobs before falling back to "
        "normal (full-price) calls for what is left.",
    )
    batch_discount: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Batch API price as a share of the normal price; unset = the model "
        "catalogue's (a model without a Batch API makes --batch-mode use normal calls).",
    )
    white_from_local_above: float = Field(
        default=0.6,
        ge=0,
        le=1.01,
        description="Cut-out confidence at or above which the white master is made locally "
        "(free) even when a generative backend is configured.",
    )
    max_regenerations: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Extra generations allowed when an output fails a check or drifts.",
    )
    fidelity_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Similarity (0-1) under which a generated product counts as drifted.",
    )
    templates_dir: Path | None = Field(
        default=None,
        description="Directory of prompt templates (white.txt, scene.txt, detail.txt) "
        "overriding the built-in ones.",
    )
    budget_usd: float | None = Field(
        default=None, gt=0, description="Spending cap for one run (USD); unset = no cap."
    )
    max_pixels: int = Field(
        default=100_000_000,
        gt=0,
        description="Largest source image (width x height) accepted; guards decompression bombs.",
    )
    min_side: int = Field(
        default=64, gt=0, description="Smallest shortest side (px) of a usable source photo."
    )
    max_source_bytes: int = Field(
        default=200_000_000, gt=0, description="Largest source file accepted, in bytes."
    )
    source_url_max_bytes: int = Field(
        default=50_000_000,
        gt=0,
        description="Largest http(s) source download, in bytes: checked against Content-Length "
        "and while streaming (after decompression); a bigger one is stopped and refused.",
    )
    source_url_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds an http(s) source may take to connect, between two reads, and "
        "for the whole download.",
    )
    source_url_max_redirects: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Redirects followed for an http(s) source; each hop is checked again "
        "(http(s) only, public addresses only).",
    )
    source_url_allow_private: bool = Field(
        default=False,
        description="Allow http(s) sources on loopback, link-local and private addresses "
        "(off: a catalog row cannot make the pipeline probe the internal network or a cloud "
        "metadata service). Multicast, unspecified and reserved addresses are always refused.",
    )
    source_url_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description='Networks (CIDR, e.g. ["10.1.2.0/24"]) whose http(s) sources are allowed '
        "even with source_url_allow_private off: an internal image server, say.",
    )
    working_side: int = Field(
        default=400,
        ge=128,
        description="Longest side at which the cut-out is segmented before full-size refinement.",
    )
    segmenter: str = Field(
        default="u2netp",
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="Neural segmenter that finds the product (a spec in the built-in "
        "segmenters or segmenter_specs_dir); 'classical' uses the colour model alone. When its "
        "weight file is missing the classical cut-out runs and the manifest says so.",
    )
    models_dir: Path = Field(
        default=Path.home() / ".cache" / "product-images" / "models",
        description="Folder of neural model weight files (`product-images models fetch` "
        "fills it; checksums are verified before use).",
    )
    segmenter_specs_dir: Path | None = Field(
        default=None,
        description="Extra folder of segmenter spec files (*.yaml), overriding built-ins by name: "
        "point at another ONNX export (u2net, an ISNet or BiRefNet export you own).",
    )
    segmenter_threads: int = Field(
        default=1,
        ge=1,
        le=32,
        description="onnxruntime threads per segmentation (products already run side by side).",
    )
    master_side: int = Field(
        default=2048, ge=256, description="Longest side of the white, scene and detail masters."
    )
    master_fill: float = Field(
        default=0.85, gt=0, le=1, description="Product fill of the white master."
    )
    review_threshold: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Confidence under which a cut-out is flagged needs_review (0.8: every "
        "named cut-out doubt flags; calibrated with bench/eval_masks.py).",
    )
    scene_background: str | None = Field(
        default=None,
        description="Backdrop photos for local scene masters: one photo (path or s3:// URL) "
        "or a local folder of them (each product gets the one whose floor colour suits it "
        "best); unset = a surface drawn in code (wood, stone, linen, paper). A generative "
        "backend sends the photo, or a folder's first, as a reference image.",
    )
    generated_scene: Literal["full", "backdrop"] = Field(
        default="full",
        description="How a generative backend makes scene masters: 'full' has the model draw "
        "the product in its scene (IPTC trainedAlgorithmicMedia); 'backdrop' has it draw only "
        "the setting (templates/backdrop.txt) and stands the real product's cut-out in it, so "
        "labels and shape stay exactly the photo's (compositeWithTrainedAlgorithmicMedia).",
    )
    scene_reflection: bool = Field(
        default=False,
        description="Add a faint floor reflection under the product in scenes "
        "(white masters take theirs from a slot's `shadow.reflection`).",
    )
    concurrency: int = Field(
        default=2, ge=1, le=64, description="Products processed at once by a catalog run."
    )
    dask_address: str | None = Field(
        default=None,
        description="Run catalog products on Dask: 'local' starts a temporary LocalCluster, "
        "'tcp://host:8786' joins a running scheduler; unset = threads in the flow process.",
    )
    processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=0,
        le=64,
        description="Worker processes a catalog run decodes and cuts out its photos in (the "
        "pixel work that holds Python's GIL), shared by every product of a process; 0 or 1 = "
        "in the product's own thread. Default: the number of cores. One-photo `run`s use none.",
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Threads one product's masters and slots are made with (Pillow and OpenCV "
        "release the GIL while they work).",
    )
    engine: Literal["auto", "prefect", "inline"] = Field(
        default="auto",
        description="How the CLI runs the pipeline: 'prefect' runs the flows (a temporary "
        "server when PREFECT_API_URL is unset), 'inline' calls the same steps in-process, "
        "'auto' picks prefect when PREFECT_API_URL is set and inline otherwise.",
    )

    incoming_prefix: str = Field(
        default="incoming/",
        description="Where new product photos are uploaded in the store: "
        "<prefix><sku>.<ext> or <prefix><sku>/<file>, or any name with S3 metadata 'sku'.",
    )
    sensor_interval_seconds: float = Field(
        default=1.0,
        ge=0.2,
        le=3600,
        description="How often `product-images serve` looks for new uploads (s): one listing "
        "of the incoming prefix, a HEAD per new object, and no flow run unless a photo "
        "arrived.",
    )
    worker_sensor_interval_seconds: int = Field(
        default=30,
        ge=5,
        le=86_400,
        description="Schedule of the upload-sensor deployment that workers run (prefect.yaml, "
        "`deployments(settings, work_pool=True)`); each look there is one flow run.",
    )
    link_expiry_hours: float = Field(
        default=24.0,
        gt=0,
        le=168,
        description="Presigned links in Prefect artifacts expire after this many hours "
        "(S3 allows at most 168, 7 days). Anyone holding a link can read that image until then.",
    )
    refresh_cron: str = Field(
        default="0 3 * * *",
        description="Cron schedule of the catalog-refresh deployment.",
    )
    refresh_timezone: str = Field(
        default="UTC",
        description="IANA time zone the refresh cron is read in, e.g. Europe/Berlin.",
    )
    refresh_catalog: str | None = Field(
        default=None,
        description="Catalog the nightly refresh runs (CSV/JSON file, folder or s3:// prefix); "
        "unset = every product that has a manifest in the store.",
    )
    work_pool: str = Field(
        default="process",
        description="Prefect work pool the deployments go to when registered for workers "
        "(prefect.yaml / `deployments(settings, work_pool=True)`); `serve` needs none.",
    )

    @model_validator(mode="after")
    def _default_models(self) -> Settings:
        """Empty model ids become the catalogues' defaults (the data decides, not the code)."""
        if not self.gemini_model.strip():
            self.gemini_model = load_catalog("gemini", self.model_catalogue_dir).default
        if not self.openai_model.strip():
            self.openai_model = load_catalog("openai", self.model_catalogue_dir).default
        return self

    @field_validator("incoming_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        value = value.strip().lstrip("/")
        if not value:
            raise ValueError("the incoming prefix cannot be the store root")
        return value if value.endswith("/") else value + "/"

    @field_validator("refresh_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    def spec_dirs(self) -> list[Path]:
        """Built-in spec directory, then the user's."""
        return [BUILTIN_SPECS_DIR, *([self.specs_dir] if self.specs_dir else [])]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
