import shutil

import pytest

from product_images.manifest import Manifest
from product_images.refresh import refresh_reasons
from product_images.request import ProductRequest
from product_images.runner import make_product
from product_images.settings import Settings
from product_images.specs import BUILTIN_SPECS_DIR
from product_images.status import last_statuses
from product_images.store import LocalStore
from product_images.testing.fixtures.images import draw_product
from product_images.wiring import wire


@pytest.fixture
def setup(tmp_path):
    photo = tmp_path / "p.jpg"
    draw_product(size=(640, 480))[0].save(photo)
    store = LocalStore(tmp_path / "out")
    settings = Settings(store=store.url, master_side=512)
    request = ProductRequest(sku="R-1", source=str(photo), platforms=["amazon"])
    return photo, store, settings, request


def test_an_unchanged_product_is_not_redone(setup):
    _, store, settings, request = setup
    assert make_product(request, wire(settings, store)).status == "done"
    manifest = store.get("R-1/manifest.json")
    result = make_product(request, wire(settings, store))
    assert result.status == "unchanged" and store.get("R-1/manifest.json") == manifest
    assert refresh_reasons(request, store, settings) == []
    assert [s.result.status for s in last_statuses(store)] == ["unchanged"]


def test_force_redoes_an_unchanged_product(setup):
    _, store, settings, request = setup
    make_product(request, wire(settings, store))
    assert (
        make_product(request.model_copy(update={"force": True}), wire(settings, store)).status
        == "done"
    )


def test_a_new_source_photo_is_redone(setup):
    photo, store, settings, request = setup
    make_product(request, wire(settings, store))
    draw_product(size=(640, 480), colour=(20, 140, 60))[0].save(photo)
    assert refresh_reasons(request, store, settings) == ["source photo changed"]
    assert make_product(request, wire(settings, store)).status == "done"


def test_a_changed_spec_file_or_platform_list_is_redone(setup, tmp_path):
    _, store, settings, request = setup
    make_product(request, wire(settings, store))
    specs = tmp_path / "specs"
    specs.mkdir()
    text = (BUILTIN_SPECS_DIR / "amazon.yaml").read_text()
    (specs / "amazon.yaml").write_text(text.replace("quality: 90", "quality: 88", 1))
    changed = settings.model_copy(update={"specs_dir": specs})
    assert refresh_reasons(request, store, changed) == ["spec amazon changed"]
    more = request.model_copy(update={"platforms": ["amazon", "ebay"]})
    assert refresh_reasons(more, store, settings) == ["platforms changed"]


def test_generated_masters_are_redone_when_their_template_or_model_changes(setup):
    _, store, settings, request = setup
    make_product(request, wire(settings, store))
    manifest = Manifest.model_validate_json(store.get("R-1/manifest.json"))
    for master in manifest.masters:
        if master.variant == "scene":
            master.generated_by, master.template_sha256 = "gemini-old-image", "0" * 64
    store.put("R-1/manifest.json", manifest.model_dump_json().encode())
    gemini = settings.model_copy(update={"backend": "gemini", "gemini_api_key": "k"})
    reasons = refresh_reasons(request, store, gemini)
    assert "scene: model gemini-old-image -> gemini-3-pro-image" in reasons
    assert "scene: prompt template changed" in reasons
    assert "detail: a generative backend is now configured" in reasons


def test_failures_are_recorded_for_retry(setup, tmp_path):
    photo, store, settings, request = setup
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    bad = request.model_copy(update={"sku": "R-2", "source": str(broken)})
    with pytest.raises(Exception, match="broken"):
        make_product(bad, wire(settings, store))
    [status] = last_statuses(store, "failed")
    assert status.request.sku == "R-2" and status.result.reason == "unsupported_image"
    shutil.copy(photo, broken)
    assert (
        make_product(
            status.request.model_copy(update={"force": True}), wire(settings, store)
        ).status
        == "done"
    )
    assert last_statuses(store, "failed") == []
