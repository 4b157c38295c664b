import io
import json

import numpy as np
import pytest
from PIL import Image

from product_images.errors import InvalidSkuError
from product_images.imaging.check import check_image
from product_images.imaging.mask_quality import iou
from product_images.manifest import Manifest
from product_images.request import ProductRequest, check_sku
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.specs import load_specs
from product_images.store import LocalStore
from product_images.testing.fixtures.images import draw_product
from product_images.wiring import wire

PLATFORMS = ["amazon", "shopify", "instagram"]


def _settings(store: str) -> Settings:
    return Settings(store=store, master_side=1024)


def _run(photo, store, sku="SKU-1", platforms=PLATFORMS):
    request = ProductRequest(sku=sku, source=str(photo), platforms=platforms)
    return run_product(request, wire(_settings(store.url), store))


def test_product_gets_masters_every_slot_and_a_manifest(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    result = _run(photo, store)
    assert result.status == "done", result.message
    manifest = Manifest.model_validate_json(store.get("SKU-1/manifest.json"))
    specs = load_specs()
    expected = {(p, s.name) for p in PLATFORMS for s in specs[p].slots}
    assert {(o.platform, o.slot) for o in manifest.outputs} == expected
    assert {m.variant for m in manifest.masters} == {"white", "scene", "detail"}
    assert manifest.source.width == 900 and manifest.source.sha256
    assert not manifest.needs_review


def test_manifest_checksums_and_sizes_match_the_stored_outputs(photo, tmp_path):
    import hashlib

    store = LocalStore(tmp_path / "out")
    _run(photo, store)
    manifest = Manifest.model_validate_json(store.get("SKU-1/manifest.json"))
    for output in manifest.outputs:
        data = store.get(output.key)
        assert hashlib.sha256(data).hexdigest() == output.sha256
        assert len(data) == output.bytes
        assert Image.open(io.BytesIO(data)).size == (output.width, output.height)


def test_amazon_main_passes_the_compliance_check(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    _run(photo, store)
    slot = load_specs()["amazon"].slot("main")
    results = check_image(store.get("SKU-1/amazon/main.jpg"), slot)
    assert all(r.passed for r in results), results
    pixels = np.asarray(Image.open(io.BytesIO(store.get("SKU-1/amazon/main.jpg"))))
    assert (pixels[:5] == 255).all()


def test_transparent_cutout_source_is_used_as_is(tmp_path):
    rgba = Image.new("RGBA", (600, 600), (0, 0, 0, 0))
    rgba.paste((20, 120, 200, 255), (150, 200, 450, 420))
    path = tmp_path / "cutout.png"
    rgba.save(path)
    store = LocalStore(tmp_path / "out")
    assert _run(path, store, platforms=["amazon"]).status == "done"
    manifest = Manifest.model_validate_json(store.get("SKU-1/manifest.json"))
    assert all(m.confidence > 0.9 for m in manifest.masters if m.variant != "detail")
    assert not manifest.needs_review or manifest.needs_review[0].step == "detail"


def _busy_photo(tmp_path):
    image, mask = draw_product(size=(700, 500))
    noise = np.random.default_rng(1).integers(-70, 70, (500, 700, 3))
    busy = Image.fromarray(np.clip(np.asarray(image).astype(int) + noise, 0, 255).astype(np.uint8))
    path = tmp_path / "busy.png"
    busy.save(path)
    return path, mask


def test_low_confidence_cutout_is_flagged_for_review(tmp_path):
    """The classical cut-out cannot vouch for a product on a noisy background: flagged."""
    path, _ = _busy_photo(tmp_path)
    store = LocalStore(tmp_path / "out")
    request = ProductRequest(sku="SKU-1", source=str(path), platforms=["amazon"])
    settings = _settings(store.url).model_copy(update={"segmenter": "classical"})
    result = run_product(request, wire(settings, store))
    assert result.status == "done" and result.needs_review
    manifest = json.loads(store.get("SKU-1/manifest.json"))
    assert manifest["needs_review"][0]["step"] == "cutout"
    assert manifest["needs_review"][0]["reason"]


def test_the_neural_cutout_finds_the_product_on_a_noisy_background(tmp_path):
    """The model sees the product through the noise; the cut-out stores its alpha."""
    path, mask = _busy_photo(tmp_path)
    store = LocalStore(tmp_path / "out")
    assert _run(path, store, platforms=["amazon"]).status == "done"
    manifest = Manifest.model_validate_json(store.get("SKU-1/manifest.json"))
    assert manifest.cutout is not None and manifest.cutout.segmenter == "u2netp+classical"
    alpha = np.asarray(Image.open(io.BytesIO(store.get(manifest.cutout.key))).getchannel("A"))
    assert iou(alpha >= 128, mask) >= 0.95


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "corrupt_image"), (b"<html><body>404</body></html>", "unsupported_image")],
)
def test_bad_source_fails_that_product_with_a_typed_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    store = LocalStore(tmp_path / "out")
    result = _run(path, store)
    assert result.status == "failed" and result.reason == reason
    assert "bad.jpg" in result.message
    assert not store.exists("SKU-1/manifest.json")


def test_missing_source_fails_that_product(tmp_path):
    store = LocalStore(tmp_path / "out")
    result = _run(tmp_path / "nope.jpg", store)
    assert result.status == "failed" and result.reason == "source_missing"
    assert "nope.jpg" in result.message


@pytest.mark.parametrize("sku", ["../etc", "a/b", "", "x\x00y", ".hidden", "a" * 200])
def test_unsafe_skus_are_refused(sku):
    with pytest.raises(InvalidSkuError):
        check_sku(sku)


@pytest.mark.s3
def test_product_from_s3_source_to_s3(photo, s3_store, s3_env):
    s3_store.put("incoming/photo.jpg", photo.read_bytes(), "image/jpeg")
    source = f"{s3_store.url.rstrip('/')}/incoming/photo.jpg"
    result = _run(source, s3_store, platforms=["amazon"])
    assert result.status == "done", result.message
    keys = set(s3_store.list("SKU-1/"))
    assert {"SKU-1/manifest.json", "SKU-1/amazon/main.jpg", "SKU-1/masters/white.png"} <= keys


def test_photo_without_a_product_fails_with_a_clear_reason(tmp_path):
    path = tmp_path / "blank.jpg"
    Image.new("RGB", (600, 400), (245, 245, 245)).save(path)
    store = LocalStore(tmp_path / "out")
    result = _run(path, store)
    assert result.status == "failed" and result.reason == "no_product_found"
    assert "blank.jpg" in result.message


def test_a_slot_that_cannot_be_made_fails_the_product_without_touching_its_outputs(photo, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "tiny.yaml").write_text(
        "title: Tiny\nsources: [https://example.com]\nslots:\n"
        "  - {name: main, variant: scene, width: 1500, height: 1500, fit: cover, max_bytes: 1000}\n"
    )
    store = LocalStore(tmp_path / "out")
    assert _run(photo, store, platforms=["amazon"]).status == "done"
    before = store.get("SKU-1/amazon/main.jpg"), store.get("SKU-1/manifest.json")
    settings = Settings(store=store.url, master_side=1024, specs_dir=specs)
    request = ProductRequest(sku="SKU-1", source=str(photo), platforms=["amazon", "tiny"])
    result = run_product(request, wire(settings, store))
    assert result.status == "failed" and result.reason == "render_failed"
    assert (store.get("SKU-1/amazon/main.jpg"), store.get("SKU-1/manifest.json")) == before
    assert not store.exists("SKU-1/tiny/main.jpg")


def test_chosen_variants_limit_masters_and_slots(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    request = ProductRequest(sku="V-1", source=str(photo), platforms=["amazon"], variants=["white"])
    result = run_product(request, wire(_settings(store.url), store))
    assert result.status == "done"
    manifest = Manifest.model_validate_json(store.get("V-1/manifest.json"))
    amazon_shadow = load_specs()["amazon"].slot("main").shadow_key()
    assert [(m.variant, m.look) for m in manifest.masters] == [
        ("white", ""),  # the plain white master is always kept
        ("white", amazon_shadow),
    ]
    assert [o.slot for o in manifest.outputs] == ["main"]


def test_each_slot_shows_the_white_master_with_its_own_shadow(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    platforms = ["amazon", "shopify", "taobao"]  # contact only, contact + cast, none
    request = ProductRequest(sku="S-1", source=str(photo), platforms=platforms, variants=["white"])
    assert run_product(request, wire(_settings(store.url), store)).status == "done"
    manifest = Manifest.model_validate_json(store.get("S-1/manifest.json"))
    specs = load_specs()
    wanted = {
        specs[p].slot(o.slot).shadow_key()
        for p in platforms
        for o in manifest.outputs
        if o.platform == p
    }
    assert {m.look for m in manifest.masters} == wanted | {""}
    assert len(wanted) == 3 and all(o.passed for o in manifest.outputs)
    plain = np.asarray(Image.open(io.BytesIO(store.get("S-1/taobao/white-bg.jpg"))).convert("L"))
    shopify = Image.open(io.BytesIO(store.get("S-1/shopify/main.jpg"))).convert("L")
    shaded = np.asarray(shopify.resize(plain.shape[::-1], Image.Resampling.BOX))
    assert shaded.mean() < plain.mean() - 0.3  # the shadow darkens the floor around the product


def test_non_square_detail_slots_get_a_crop_at_their_own_aspect(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    platforms = ["amazon", "pinterest", "instagram"]  # detail 1:1, 2:3, 4:5
    request = ProductRequest(sku="D-1", source=str(photo), platforms=platforms, variants=["detail"])
    assert run_product(request, wire(_settings(store.url), store)).status == "done"
    manifest = Manifest.model_validate_json(store.get("D-1/manifest.json"))
    details = {(m.look, m.rank): m for m in manifest.masters}
    assert {look for look, rank in details if rank == 0} == {"", "2x3", "4x5"}
    assert details[("2x3", 0)].width / details[("2x3", 0)].height == pytest.approx(2 / 3, 0.02)
    assert any(rank > 0 for _, rank in details)  # ranked alternatives are kept
    assert details[("2x3", 0)].key.startswith("D-1/masters/detail-2x3.")
    assert all(o.passed for o in manifest.outputs)


def test_empty_variants_mean_every_variant_the_platforms_need(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    request = ProductRequest(sku="V-2", source=str(photo), platforms=["amazon"], variants=[])
    assert run_product(request, wire(_settings(store.url), store)).status == "done"  # empty = all


def test_scene_on_a_folder_of_backdrop_photos_records_which(photo, tmp_path):
    backdrops = tmp_path / "backdrops"
    backdrops.mkdir()
    Image.new("RGB", (800, 600), (236, 232, 224)).save(backdrops / "pale.jpg")
    Image.new("RGB", (800, 600), (170, 30, 30)).save(backdrops / "red.jpg")  # like the product
    store = LocalStore(tmp_path / "out")
    settings = Settings(store=store.url, master_side=1024, scene_background=str(backdrops))
    request = ProductRequest(sku="B-1", source=str(photo), platforms=["amazon"], variants=["scene"])
    assert run_product(request, wire(settings, store)).status == "done"
    manifest = Manifest.model_validate_json(store.get("B-1/manifest.json"))
    (scene,) = manifest.masters
    assert scene.notes == ["scene: on the backdrop photo pale.jpg"]
    assert manifest.outputs[0].slot == "scene" and manifest.outputs[0].passed


@pytest.mark.parametrize(
    ("models_dir", "segmenter"),
    [(None, "u2netp+classical"), ("empty", "classical")],
)
def test_the_manifest_says_which_segmenter_made_the_mask(photo, tmp_path, models_dir, segmenter):
    """With the model file the neural cut-out runs; without it the classical one, said so."""
    store = LocalStore(tmp_path / "out")
    settings = _settings(store.url)
    if models_dir:
        settings = settings.model_copy(update={"models_dir": tmp_path / models_dir})
    request = ProductRequest(sku="SKU-1", source=str(photo), platforms=["amazon"])
    assert run_product(request, wire(settings, store)).status == "done"
    manifest = Manifest.model_validate_json(store.get("SKU-1/manifest.json"))
    assert manifest.cutout is not None and manifest.cutout.segmenter == segmenter
    assert not manifest.needs_review
