"""Model catalogues: validation that names the file and field, statuses by date, choices."""

from datetime import date
from importlib import resources

import pytest
import yaml

from product_images.backends.generative import estimate_cost
from product_images.errors import ModelCatalogError, ModelRetiredError
from product_images.generative.configured_model import model_choice, price_table
from product_images.model_catalogue import PROVIDERS, choose_model, load_catalog
from product_images.settings import Settings

TODAY = date(2026, 12, 5)


def _builtin(provider: str) -> dict:
    raw = (
        resources.files("product_images.model_catalogue").joinpath(f"{provider}.yaml").read_bytes()
    )
    return yaml.safe_load(raw)


def _write(directory, provider: str, data: dict) -> None:
    (directory / f"{provider}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_builtin_catalogues_are_valid_and_default_to_a_current_model(provider):
    catalog = load_catalog(provider)
    assert catalog.provider == provider and len(catalog.version) == 16
    assert catalog.current(TODAY)[0].id == catalog.default


def test_the_gemini_default_is_current_and_the_old_default_is_deprecated():
    catalog = load_catalog("gemini")
    assert catalog.default == "gemini-3-pro-image" and catalog.default_reason
    statuses = {m.id: m.status_on(TODAY) for m in catalog.models}
    assert statuses["gemini-3.1-flash-image"] == "deprecated"
    assert statuses["gemini-2.5-flash-image"] == "shut_down"
    assert statuses["gemini-3-pro-image-preview"] == "shut_down"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["models"][0].update(colour="red"), "models.0.colour: Extra inputs"),
        (
            lambda d: d["models"][0]["image_sizes"].update({"8K": {"tokens": 1, "usd": 1}}),
            "unknown size(s) ['8K']",
        ),
        (lambda d: d["models"][0].update(status="shut_down"), "needs replacements"),
        (
            lambda d: d["models"][3].update(replacements=["gemini-9"]),
            "models.3.replacements: gemini-9 is not in this catalogue",
        ),
        (
            lambda d: d["models"][3].update(replacements=["gemini-2.5-flash-image"]),
            "gemini-2.5-flash-image is not a current model",
        ),
        (lambda d: d.update(default="gemini-3.1-flash-image"), "default: 'gemini-3.1-flash-image'"),
        (lambda d: d["models"][1].update(aliases=["nano-banana-pro"]), "used twice: nano-banana"),
        (
            lambda d: d["models"][0]["image_sizes"]["1K"].update(usd=-1),
            "models.0.image_sizes.1K.usd",
        ),
        (lambda d: d.update(provider="openai"), "provider: must match the file name"),
    ],
)
def test_an_invalid_catalogue_names_the_file_and_the_field(tmp_path, edit, message):
    data = _builtin("gemini")
    edit(data)
    _write(tmp_path, "gemini", data)
    with pytest.raises(ModelCatalogError) as caught:
        load_catalog("gemini", tmp_path)
    assert str(tmp_path / "gemini.yaml") in str(caught.value)
    assert message in str(caught.value)


def test_a_catalogue_that_is_not_yaml_says_where(tmp_path):
    (tmp_path / "gemini.yaml").write_text("models: [\n  - id: x\n  bad")
    with pytest.raises(ModelCatalogError, match=r"(?s)gemini.yaml: not valid YAML.*line 2"):
        load_catalog("gemini", tmp_path)


def test_a_missing_user_directory_is_an_error(tmp_path):
    with pytest.raises(ModelCatalogError, match="does not exist"):
        load_catalog("gemini", tmp_path / "nope")


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2026, 10, 5), "ga"),
        (date(2026, 10, 6), "deprecated"),
        (date(2026, 11, 1), "shut_down"),
    ],
)
def test_status_follows_the_dates(on, expected):
    entry = load_catalog("gemini").find("gemini-3.1-flash-image")
    assert entry is not None
    announced_ga = entry.model_copy(update={"status": "ga", "shutdown": date(2026, 11, 1)})
    assert announced_ga.status_on(on) == (expected if on < date(2026, 11, 1) else "shut_down")
    assert entry.status_on(on) in ("deprecated", "shut_down")


def test_a_shut_down_id_fails_with_the_ids_to_use_instead():
    with pytest.raises(ModelRetiredError) as caught:
        choose_model(load_catalog("gemini"), "gemini-2.5-flash-image", "2K", TODAY, "GEMINI_MODEL")
    assert str(caught.value) == (
        "model 'gemini-2.5-flash-image' was shut down on 2026-10-02: set GEMINI_MODEL to "
        "gemini-3-pro-image, gemini-nano-banana-2.1"
    )


def test_a_deprecated_id_warns_with_the_ids_to_use_instead():
    choice = choose_model(load_catalog("gemini"), "gemini-3.1-flash-image", "2K", TODAY, "X")
    assert choice.image_size == "2K" and choice.image_usd == pytest.approx(0.101)
    (warning,) = choice.warnings
    assert warning.startswith("model 'gemini-3.1-flash-image' is deprecated since 2026-10-06")
    assert warning.endswith("use gemini-nano-banana-2.1, gemini-3-pro-image instead")


@pytest.mark.parametrize(
    ("model", "requested", "sent", "warns"),
    [
        ("gemini-3-pro-image", "2K", "2K", False),
        ("gemini-3-pro-image", "512", "1K", True),  # no 512: the next size up
        ("gemini-3.1-flash-lite-image", "4K", "1K", True),  # 1K only: the largest
        ("gemini-nano-banana-2.1", None, None, False),  # no size asked, none sent
        ("nano-banana-pro", "4K", "4K", False),  # an alias has its model's facts
    ],
)
def test_image_size_comes_from_the_catalogue(model, requested, sent, warns):
    choice = choose_model(load_catalog("gemini"), model, requested, TODAY, "GEMINI_MODEL")
    assert choice.image_size == sent and choice.sends_image_size is True
    assert bool(choice.warnings) is warns
    assert choice.model == model  # sent as configured: relays have their own names


def test_a_model_the_catalogue_does_not_know_warns_and_is_unpriced():
    choice = choose_model(load_catalog("gemini"), "relay-banana", "2K", TODAY, "GEMINI_MODEL")
    assert choice.entry is None and choice.price is None and choice.sends_image_size is None
    assert "not in the model catalogue" in choice.warnings[0]
    assert "current: gemini-3-pro-image, gemini-nano-banana-2.1" in choice.warnings[0]


def test_prices_come_from_the_catalogue_and_settings_override_them():
    settings = Settings()
    assert price_table(settings)["gemini-3-pro-image"].output_per_million == 120.0
    assert price_table(settings)["nano-banana-pro"].output_per_million == 120.0
    override = {"gemini-3-pro-image": {"input_per_million": 0, "output_per_million": 1}}
    cheap = Settings(prices=override)
    assert price_table(cheap)["gemini-3-pro-image"].output_per_million == 1


def test_editing_the_catalogue_file_changes_costs_warnings_and_default(tmp_path):
    """No code change: a user catalogue with new prices and a deprecation takes effect."""
    before = Settings(gemini_image_size="2K")
    choice = model_choice(before, "gemini", on=TODAY)
    cost_before = estimate_cost(choice, before, "x" * 300, 1)
    assert choice.warnings == ()

    data = _builtin("gemini")
    pro = next(m for m in data["models"] if m["id"] == "gemini-3-pro-image")
    pro["output_usd_per_million"] *= 2
    pro["image_sizes"]["2K"] = {"tokens": 1120, "usd": 0.268}
    for model in data["models"]:  # replacements must be current models
        if pro["id"] in model.get("replacements", []):
            model["replacements"] = ["gemini-nano-banana-2.1"]
    pro.update(deprecated="2026-12-01", status="deprecated")
    pro["replacements"] = ["gemini-nano-banana-2.1"]
    data["default"] = "gemini-nano-banana-2.1"
    _write(tmp_path, "gemini", data)

    after = Settings(model_catalogue_dir=tmp_path, gemini_image_size="2K")
    assert after.generation.gemini_model == "gemini-nano-banana-2.1"  # the file's new default
    pinned = after.model_copy(update={"gemini_model": "gemini-3-pro-image"})
    changed = model_choice(pinned, "gemini", on=TODAY)
    assert estimate_cost(changed, pinned, "x" * 300, 1) > 1.9 * cost_before
    assert price_table(pinned)["gemini-3-pro-image"].output_per_million == 240.0
    assert changed.warnings == (
        "model 'gemini-3-pro-image' is deprecated since 2026-12-01: use gemini-nano-banana-2.1 "
        "instead",
    )
