"""The one typed settings object, read once from the environment (PRODUCT_IMAGES_<NAME>).

Settings are grouped by what they are about (`settings.store.url`, `settings.limits.gemini_rpm`,
...); the environment variables keep their flat names (PRODUCT_IMAGES_STORE,
PRODUCT_IMAGES_GEMINI_RPM, GEMINI_API_KEY...), and so do keyword arguments
(`Settings(store="s3://b", concurrency=4)`) and overrides (`settings.with_overrides(...)`). Every
change is validated: groups are frozen, and `with_overrides` (which `model_copy(update=...)`
also goes through) builds a new, checked object. `product-images settings` prints them all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from product_images.cores import usable_cores
from product_images.model_catalogue.catalog import ModelPrice, load_catalog
from product_images.specs import BUILTIN_SPECS_DIR

__all__ = [
    "GenerationSettings",
    "ImagingSettings",
    "LimitSettings",
    "ModelPrice",
    "RunSettings",
    "ServingSettings",
    "Settings",
    "SourceSettings",
    "StoreSettings",
    "get_settings",
]

ENV_PREFIX = "PRODUCT_IMAGES_"


class _Group(BaseModel):
    """A group of settings: frozen (change them with `Settings.with_overrides`), no unknown
    names."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class StoreSettings(_Group):
    """Where outputs and bookkeeping live, and how they are published."""

    url: str = Field(
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
    link_expiry_hours: float = Field(
        default=24.0,
        gt=0,
        le=168,
        description="Presigned links in Prefect artifacts expire after this many hours "
        "(S3 allows at most 168, 7 days). Anyone holding a link can read that image until then.",
    )
    incoming_prefix: str = Field(
        default="incoming/",
        description="Where new product photos are uploaded in the store: "
        "<prefix><sku>.<ext> or <prefix><sku>/<file>, or any name with S3 metadata 'sku'.",
    )

    @field_validator("incoming_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        value = value.strip().lstrip("/")
        if not value:
            raise ValueError("the incoming prefix cannot be the store root")
        return value if value.endswith("/") else value + "/"


class SourceSettings(_Group):
    """What source photos are accepted, and how http(s) sources are fetched."""

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


class GenerationSettings(_Group):
    """Generative backends: which, their keys and models, prompts, prices and checks."""

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
    gemini_api_key_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the Gemini API key, read by the "
        "flows and tasks when GEMINI_API_KEY is not set (workers then need no key in their "
        "environment).",
    )
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com",
        validation_alias=AliasChoices("GEMINI_BASE_URL", "PRODUCT_IMAGES_GEMINI_BASE_URL"),
        description="Gemini API root (env GEMINI_BASE_URL): set it for relays and proxies.",
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
    model_catalogue_dir: Path | None = Field(
        default=None,
        description="Directory of generative model catalogue files (gemini.yaml, openai.yaml) "
        "replacing "
        "the built-in ones: model ids, status and dates, image sizes, prices and Batch "
        "discounts. Costs, imageSize, warnings and the default model come from them.",
    )
    templates_dir: Path | None = Field(
        default=None,
        description="Directory of prompt templates (white.txt, scene.txt, detail.txt) "
        "overriding the built-in ones.",
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="Price overrides by model id (USD per million input / output tokens); "
        "prices otherwise come from the model catalogue. Costs are computed from the usage "
        "the API reports.",
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
    generated_scene: Literal["full", "backdrop"] = Field(
        default="full",
        description="How a generative backend makes scene masters: 'full' has the model draw "
        "the product in its scene (IPTC trainedAlgorithmicMedia); 'backdrop' has it draw only "
        "the setting (templates/backdrop.txt) and stands the real product's cut-out in it, so "
        "labels and shape stay exactly the photo's (compositeWithTrainedAlgorithmicMedia).",
    )
    budget_usd: float | None = Field(
        default=None, gt=0, description="Spending cap for one run (USD); unset = no cap."
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

    @model_validator(mode="before")
    @classmethod
    def _default_models(cls, data: Any) -> Any:
        """Empty model ids become the catalogues' defaults (the data decides, not the code)."""
        if not isinstance(data, dict):
            return data
        folder = Path(data["model_catalogue_dir"]) if data.get("model_catalogue_dir") else None
        for provider in ("gemini", "openai"):
            if not str(data.get(f"{provider}_model") or "").strip():
                data = {**data, f"{provider}_model": load_catalog(provider, folder).default}
        return data


class LimitSettings(_Group):
    """How hard the generative APIs are called: timeouts, backoff, rates, breaker, deferral."""

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


class ImagingSettings(_Group):
    """The pixel work: platforms and their specs, cut-out, masters, review."""

    platforms: list[str] = Field(
        default_factory=lambda: ["amazon", "shopify", "instagram"],
        description="Platforms rendered when none are given.",
    )
    specs_dir: Path | None = Field(
        default=None,
        description="Extra directory of platform spec YAML files (overrides built-ins by name).",
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
    scene_reflection: bool = Field(
        default=False,
        description="Add a faint floor reflection under the product in scenes "
        "(white masters take theirs from a slot's `shadow.reflection`).",
    )


class RunSettings(_Group):
    """How a catalog runs: engine, products at once, processes and threads."""

    engine: Literal["auto", "prefect", "inline"] = Field(
        default="auto",
        description="How the CLI runs the pipeline: 'prefect' runs the flows (a temporary "
        "server when PREFECT_API_URL is unset), 'inline' calls the same steps in-process, "
        "'auto' picks prefect when PREFECT_API_URL is set and inline otherwise.",
    )

    concurrency: int = Field(
        default=2, ge=1, le=64, description="Products processed at once by a catalog run."
    )
    processes: int = Field(
        default_factory=lambda: min(usable_cores(), 64),
        ge=0,
        le=64,
        description="Worker processes a catalog run decodes and cuts out its photos in (the "
        "pixel work that holds Python's GIL), shared by every product of a process; 0 or 1 = "
        "in the product's own thread. Default: the cores the process may use. One-photo "
        "`run`s use none.",
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Threads one product's masters and slots are made with (Pillow and OpenCV "
        "release the GIL while they work).",
    )
    dask_address: str | None = Field(
        default=None,
        description="Run catalog products on Dask: 'local' starts a temporary LocalCluster, "
        "'tcp://host:8786' joins a running scheduler; unset = threads in the flow process.",
    )


class ServingSettings(_Group):
    """What `serve` and the deployments do: upload watching, refresh schedule, work pool."""

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

    @field_validator("refresh_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


class Settings(BaseSettings):
    """Pipeline configuration, one group per concern; see the module doc."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    store: StoreSettings = Field(default_factory=StoreSettings)
    sources: SourceSettings = Field(default_factory=SourceSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    imaging: ImagingSettings = Field(default_factory=ImagingSettings)
    running: RunSettings = Field(default_factory=RunSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _FlatEnvironment(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """`Settings(concurrency=4)` means `Settings(running={"concurrency": 4})`."""
        return _grouped(data) if isinstance(data, dict) else data

    def with_overrides(self, **changes: Any) -> Settings:
        """A validated copy with these settings changed (flat names: `concurrency=4`); a bad
        value raises pydantic's ValidationError naming the setting."""
        merged = {name: getattr(self, name).model_dump() for name in GROUPS}
        for group, values in _grouped(changes).items():
            merged[group] = {**merged[group], **values}
        return Settings.model_validate(merged)

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Settings:
        """Validated, unlike pydantic's: an update goes through `with_overrides`."""
        return self.with_overrides(**dict(update or {}))

    def spec_dirs(self) -> list[Path]:
        """Built-in spec directory, then the user's."""
        extra = self.imaging.specs_dir
        return [BUILTIN_SPECS_DIR, *([extra] if extra else [])]


GROUPS: dict[str, type[_Group]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}
#: Flat name (environment variable suffix, keyword) -> (group, field).
FLAT_NAMES: dict[str, tuple[str, str]] = {
    ("store" if (group, name) == ("store", "url") else name): (group, name)
    for group, model in GROUPS.items()
    for name in model.model_fields
}


def _grouped(data: dict[str, Any]) -> dict[str, Any]:
    """Flat names moved into their groups; group names (a dict or a group) kept as they are."""
    grouped: dict[str, Any] = {}
    for key, value in data.items():
        if key in GROUPS and not (key == "store" and isinstance(value, str)):
            grouped[key] = {**grouped.get(key, {}), **_as_dict(value)}
            continue
        flat = VARIABLES.get(key, key)  # a variable's name works too: GEMINI_API_KEY=...
        if flat not in FLAT_NAMES:
            raise ValueError(f"unknown setting {key!r}")
        group, name = FLAT_NAMES[flat]
        grouped.setdefault(group, {})[name] = value
    return grouped


def _as_dict(value: Any) -> dict[str, Any]:
    return value.model_dump() if isinstance(value, BaseModel) else dict(value)


def variable_names(flat: str) -> list[str]:
    """The environment variables a setting is read from, first one first."""
    group, name = FLAT_NAMES[flat]
    alias = GROUPS[group].model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [ENV_PREFIX + flat.upper()]


#: Environment variable -> flat name, for the settings read from a variable of another name.
VARIABLES: dict[str, str] = {v: flat for flat in FLAT_NAMES for v in variable_names(flat)}


class _FlatEnvironment(PydanticBaseSettingsSource):
    """Reads every setting of every group from its flat variable; lists, dicts and networks
    are JSON (as pydantic-settings reads them)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads whole groups

    def __call__(self) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        for flat, (group, name) in FLAT_NAMES.items():
            raw = next((os.environ[v] for v in variable_names(flat) if v in os.environ), None)
            if raw is not None:
                field = GROUPS[group].model_fields[name]
                found.setdefault(group, {})[name] = _decoded(raw, field)
        return found


def _decoded(raw: str, field: FieldInfo) -> Any:
    complex_types = (list, dict)
    annotation = field.annotation
    origins = {
        get_origin(annotation),
        *(get_origin(a) for a in getattr(annotation, "__args__", ())),
    }
    if origins & set(complex_types) or annotation in complex_types:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw  # pydantic then says what it expected
    return raw


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
