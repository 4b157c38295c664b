"""Tests for the marketplace spec files in `platform_specs/` and their loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from product_images.errors import SpecError, UnknownPlatformError
from product_images.specs import (
    BUILTIN_SPECS_DIR,
    PlatformSpec,
    load_spec_file,
    load_specs,
    select_platforms,
)

SPEC_FILES = sorted(BUILTIN_SPECS_DIR.glob("*.y*ml"))

EXPECTED_PLATFORMS = {
    "amazon",
    "ebay",
    "etsy",
    "facebook",
    "google-merchant",
    "instagram",
    "jd",
    "lazada",
    "mercadolibre",
    "pinduoduo",
    "pinterest",
    "rakuten",
    "shopee",
    "shopify",
    "taobao",
    "temu",
    "tiktok-shop",
    "walmart",
}

# Platforms whose white image must be pure RGB 255 (research notes, section 4).
PURE_WHITE_SLOTS = {
    "amazon": "main",
    "walmart": "main",
    "tiktok-shop": "main",
    "taobao": "white-bg",
    "pinduoduo": "main",
}


def by_stem(path: Path) -> str:
    return path.stem


def load(path: Path) -> PlatformSpec:
    return load_spec_file(path)


def minimal_spec(**changes: Any) -> dict[str, Any]:
    """A valid spec as a dict; `changes` replace top-level keys."""
    spec: dict[str, Any] = {
        "title": "Acme Market",
        "sources": ["https://example.com/image-rules"],
        "slots": [
            {"name": "main", "variant": "white", "width": 1000, "height": 1000, "fill": 0.85},
            {
                "name": "lifestyle",
                "variant": "scene",
                "width": 1000,
                "height": 1000,
                "fit": "cover",
            },
        ],
    }
    spec.update(changes)
    return spec


def write_spec(directory: Path, name: str, data: dict[str, Any]) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    return str(info.value)


# --- the built-in files ---------------------------------------------------------------------


def test_every_expected_platform_has_a_file() -> None:
    assert {p.stem for p in SPEC_FILES} == EXPECTED_PLATFORMS


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_builtin_file_validates(path: Path) -> None:
    spec = load(path)
    assert spec.name == path.stem
    assert spec.title
    assert spec.notes
    assert len(spec.version) == 16
    assert all(source.startswith("https://") for source in spec.sources)


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_builtin_file_leaves_name_and_version_to_the_loader(path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert "version" not in raw
    assert "name" not in raw


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_builtin_file_starts_with_a_comment(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith("# ")


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_builtin_file_has_white_scene_and_detail_slots(path: Path) -> None:
    spec = load(path)
    assert any(slot.variant == "white" for slot in spec.slots), "no white slot"
    assert spec.variants() == {"white", "scene", "detail"}


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_slot_target_size_is_within_its_limits(path: Path) -> None:
    for slot in load(path).slots:
        width, height = slot.target_size()
        lo, hi = slot.size_limits()
        assert lo <= max(width, height) <= hi, slot.name
        assert min(width, height) >= slot.min_side, slot.name


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_slot_fill_rules_are_consistent(path: Path) -> None:
    for slot in load(path).slots:
        if slot.variant == "white":
            assert slot.fit == "pad", slot.name
            assert slot.fill is not None and slot.min_fill is not None, slot.name
        else:
            assert slot.fit == "cover", slot.name
            assert not slot.pure_white, slot.name
        if slot.fill is not None:
            assert (slot.min_fill or 0) <= slot.fill <= (slot.max_fill or 1), slot.name


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_slot_output_settings(path: Path) -> None:
    spec = load(path)
    for slot in spec.slots:
        assert slot.format == "jpeg", slot.name
        assert slot.embed_icc, slot.name
        assert slot.max_bytes is not None, slot.name
        expected = ["xmp"] if spec.name == "google-merchant" else []
        assert slot.keep_metadata == expected, slot.name


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_pure_white_only_where_the_marketplace_demands_it(path: Path) -> None:
    spec = load(path)
    pure = {slot.name for slot in spec.slots if slot.pure_white}
    expected = {PURE_WHITE_SLOTS[spec.name]} if spec.name in PURE_WHITE_SLOTS else set()
    assert pure == expected
    for name in pure:
        assert spec.slot(name).variant == "white"
        assert spec.slot(name).background_rgb() == (255, 255, 255)


def test_amazon_main_slot() -> None:
    main = load_specs()["amazon"].slot("main")
    assert main.variant == "white"
    assert main.pure_white
    assert main.fit == "pad"
    assert main.fill is not None and main.fill >= 0.85
    assert main.min_fill is not None and main.min_fill >= 0.85
    assert main.aspect_ratio() == 1.0
    assert main.target_size() == (2000, 2000)


def test_taobao_white_image_budget() -> None:
    white = load_specs()["taobao"].slot("white-bg")
    assert white.target_size() == (800, 800)
    assert white.max_bytes == 300_000


# --- user directories -----------------------------------------------------------------------


def test_user_directory_adds_and_overrides_platforms(tmp_path: Path) -> None:
    write_spec(tmp_path, "acme", minimal_spec())
    write_spec(tmp_path, "amazon", minimal_spec(title="Amazon (our house rules)"))

    specs = load_specs([BUILTIN_SPECS_DIR, tmp_path])

    assert specs["acme"].title == "Acme Market"
    assert specs["amazon"].title == "Amazon (our house rules)"
    assert [slot.name for slot in specs["amazon"].slots] == ["main", "lifestyle"]
    assert specs["walmart"].title == "Walmart"  # untouched built-ins stay
    assert set(specs) == EXPECTED_PLATFORMS | {"acme"}


def test_later_directory_wins(tmp_path: Path) -> None:
    write_spec(tmp_path, "amazon", minimal_spec(title="Amazon (our house rules)"))
    specs = load_specs([tmp_path, BUILTIN_SPECS_DIR])
    assert specs["amazon"].title == "Amazon"


def test_override_changes_the_version(tmp_path: Path) -> None:
    write_spec(tmp_path, "amazon", minimal_spec())
    assert load_specs([tmp_path])["amazon"].version != load_specs()["amazon"].version


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_specs([tmp_path / "nope"])


# --- errors name the file and the field -----------------------------------------------------


def test_typo_in_field_name(tmp_path: Path) -> None:
    spec = minimal_spec()
    spec["slots"][1]["fitt"] = spec["slots"][1].pop("fit")
    message = spec_error(write_spec(tmp_path, "acme", spec))
    assert message.startswith("acme.yaml: ")
    assert "slots.1.fitt" in message


def test_typo_in_top_level_field_name(tmp_path: Path) -> None:
    spec = minimal_spec()
    spec["titel"] = spec.pop("title")
    message = spec_error(write_spec(tmp_path, "acme", spec))
    assert message.startswith("acme.yaml: ")
    assert "titel" in message
    assert "title" in message  # the missing required field is named too


def test_bad_enum_value(tmp_path: Path) -> None:
    spec = minimal_spec()
    spec["slots"][0]["fit"] = "padd"
    message = spec_error(write_spec(tmp_path, "acme", spec))
    assert message.startswith("acme.yaml: ")
    assert "slots.0.fit:" in message
    assert "'pad'" in message  # says what is allowed


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(
        "title: Acme\nsources: [https://example.com]\nslots:\n  - name: main\n    fit: [pad\n",
        encoding="utf-8",
    )
    message = spec_error(path)
    assert message.startswith("acme.yaml: not valid YAML")
    assert "fit: [pad" in message
    assert "line 5" in message


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert spec_error(path).startswith("acme.yaml: expected a mapping")


def test_name_must_match_file_name(tmp_path: Path) -> None:
    message = spec_error(write_spec(tmp_path, "acme", minimal_spec(name="other")))
    assert message.startswith("acme.yaml: name: ")
    assert "'other'" in message


def test_duplicate_slot_names(tmp_path: Path) -> None:
    spec = minimal_spec()
    spec["slots"][1]["name"] = "main"
    message = spec_error(write_spec(tmp_path, "acme", spec))
    assert message.startswith("acme.yaml: slots: ")
    assert "duplicate slot names: main" in message


def test_unquoted_aspect_is_rejected(tmp_path: Path) -> None:
    # YAML 1.1 reads an unquoted 4:5 as the base-60 integer 245; the spec must quote it.
    path = tmp_path / "acme.yaml"
    path.write_text(
        "title: Acme\nsources: [https://example.com]\nslots:\n"
        "  - {name: main, variant: scene, fit: cover, aspect: 4:5, long_side: 1000}\n",
        encoding="utf-8",
    )
    message = spec_error(path)
    assert message.startswith("acme.yaml: ")
    assert "slots.0.aspect" in message


def test_bad_file_in_user_directory_names_that_file(tmp_path: Path) -> None:
    spec = minimal_spec()
    spec["slots"][0]["fit"] = "padd"
    write_spec(tmp_path, "acme", spec)
    with pytest.raises(SpecError, match=r"^acme\.yaml: slots\.0\.fit"):
        load_specs([BUILTIN_SPECS_DIR, tmp_path])


# --- selecting platforms --------------------------------------------------------------------


def test_select_platforms_keeps_the_order_asked_for() -> None:
    specs = load_specs()
    chosen = select_platforms(specs, ["walmart", "amazon"])
    assert [spec.name for spec in chosen] == ["walmart", "amazon"]


def test_select_unknown_platform_lists_known_names() -> None:
    specs = load_specs()
    with pytest.raises(UnknownPlatformError) as info:
        select_platforms(specs, ["amazon", "amazn"])
    message = str(info.value)
    assert "amazn" in message
    known = message.split("known: ", 1)[1]
    assert known.split(", ") == sorted(EXPECTED_PLATFORMS)
    assert isinstance(info.value, SpecError)


def test_unknown_slot_lists_known_slots() -> None:
    with pytest.raises(UnknownPlatformError, match="slots: main, scene, detail"):
        load_specs()["amazon"].slot("hero")


# --- shadows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "shadow", "expected"),
    [
        (0, {"contact": 0.5, "reach": 0.2}, "shadow.reach: 0.2 reaches the frame edge"),
        (0, {"contact": 1.5}, "slots.0.shadow.contact"),
        (0, {"contact": 0.5, "blur": 3}, "slots.0.shadow.blur"),
        (1, {"contact": 0.5}, "only white slots take a shadow"),
    ],
)
def test_bad_shadow_names_the_file_and_field(
    tmp_path: Path, slot: int, shadow: dict[str, Any], expected: str
) -> None:
    spec = minimal_spec()
    spec["slots"][slot]["shadow"] = shadow
    message = spec_error(write_spec(tmp_path, "acme", spec))
    assert message.startswith("acme.yaml: slots.")
    assert expected in message


def test_shadow_may_not_push_the_fill_past_its_maximum(tmp_path: Path) -> None:
    spec = minimal_spec()
    spec["slots"][0].update(max_fill=0.9, shadow={"contact": 0.5, "reach": 0.05})
    assert "past max_fill 0.9" in spec_error(write_spec(tmp_path, "acme", spec))


@pytest.mark.parametrize("path", SPEC_FILES, ids=by_stem)
def test_builtin_shadows_fit_their_slots(path: Path) -> None:
    for slot in load(path).slots:
        if slot.pure_white and path.stem != "taobao":  # Taobao: no shadow at all
            assert slot.shadow is not None and slot.shadow.cast == 0, slot.name
        if slot.shadow is not None:
            assert slot.variant == "white" and slot.shadow.contact > 0


def test_taobao_white_image_has_no_shadow() -> None:
    assert load_specs()["taobao"].slot("white-bg").shadow is None


def test_shadow_key_changes_with_its_parameters() -> None:
    main = load_specs()["shopify"].slot("main")
    assert main.shadow is not None
    softer = main.shadow.model_copy(update={"softness": 0.9})
    assert main.shadow_key().startswith("contact+cast-") and softer.key != main.shadow_key()


def test_google_merchant_holds_500_px_from_2027_01_31_and_keeps_provenance() -> None:
    spec = load_specs()["google-merchant"]
    assert "2027-01-31" in spec.notes
    for slot in spec.slots:
        assert slot.min_side >= 500 and min(slot.target_size()) >= 500, slot.name
        assert "xmp" in slot.keep_metadata, slot.name  # the IPTC DigitalSourceType
