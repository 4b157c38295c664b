"""Settings: grouped, read from their flat environment variables, validated on every change."""

import pytest
from pydantic import ValidationError

from product_images.settings import FLAT_NAMES, GROUPS, Settings, variable_names


def test_every_setting_is_in_exactly_one_group_and_described() -> None:
    fields = [(g, n) for g, model in GROUPS.items() for n in model.model_fields]
    assert sorted(fields) == sorted(FLAT_NAMES.values())
    assert set(GROUPS) == {
        "store",
        "sources",
        "generation",
        "limits",
        "imaging",
        "running",
        "serving",
    }
    for group, name in fields:
        assert GROUPS[group].model_fields[name].description, f"{group}.{name}"


@pytest.mark.parametrize(
    ("variable", "value", "group", "name", "expected"),
    [
        ("PRODUCT_IMAGES_STORE", "s3://shop/out", "store", "url", "s3://shop/out"),
        ("PRODUCT_IMAGES_CONCURRENCY", "7", "running", "concurrency", 7),
        ("PRODUCT_IMAGES_PLATFORMS", '["ebay", "etsy"]', "imaging", "platforms", ["ebay", "etsy"]),
        ("PRODUCT_IMAGES_GEMINI_RPM", "12.5", "limits", "gemini_rpm", 12.5),
        (
            "GEMINI_MODEL",
            "gemini-2.5-flash-image",
            "generation",
            "gemini_model",
            "gemini-2.5-flash-image",
        ),
        ("PRODUCT_IMAGES_STABLE_KEYS", "false", "store", "stable_keys", False),
    ],
)
def test_the_environment_keeps_its_flat_names(monkeypatch, variable, value, group, name, expected):
    monkeypatch.setenv(variable, value)
    assert getattr(getattr(Settings(), group), name) == expected


def test_keys_read_from_their_documented_variables(monkeypatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "secret-1")
    key = Settings().generation.gemini_api_key
    assert key is not None and key.get_secret_value() == "secret-1"
    assert variable_names("gemini_api_key")[0] == "GEMINI_API_KEY"
    assert variable_names("store") == ["PRODUCT_IMAGES_STORE"]


def test_a_bad_environment_value_names_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("PRODUCT_IMAGES_CONCURRENCY", "1000")
    with pytest.raises(ValidationError, match=r"running\.concurrency"):
        Settings()


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"concurrency": 1000}, "running.concurrency"),
        ({"budget_usd": -5}, "generation.budget_usd"),
        ({"refresh_timezone": "Mars/Olympus"}, "serving.refresh_timezone"),
        ({"segmenter": "../weights"}, "imaging.segmenter"),
    ],
)
def test_every_override_is_validated(change, where) -> None:
    settings = Settings()
    with pytest.raises(ValidationError, match=where.replace(".", r"\.")):
        settings.with_overrides(**change)
    with pytest.raises(ValidationError, match=where.replace(".", r"\.")):
        settings.model_copy(update=change)  # pydantic's copy would not check: ours does


def test_overrides_and_keywords_take_flat_names() -> None:
    settings = Settings(store="/tmp/x", concurrency=3)
    changed = settings.with_overrides(store="s3://b/p", threads=1)
    assert (settings.store.url, settings.running.concurrency) == ("/tmp/x", 3)
    assert (changed.store.url, changed.running.concurrency, changed.running.threads) == (
        "s3://b/p",
        3,
        1,
    )


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="concurency"):
        Settings().with_overrides(concurency=3)


def test_groups_cannot_be_changed_in_place() -> None:
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.running.concurrency = 9  # type: ignore[misc]


def test_empty_model_ids_become_the_catalogue_defaults() -> None:
    generation = Settings(gemini_model="", openai_model="").generation
    assert generation.gemini_model and generation.openai_model
