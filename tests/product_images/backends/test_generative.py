"""The generative backend end to end: our real clients against the stand-in HTTP server."""

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from product_images.catalog import load_catalog
from product_images.errors import ModelRetiredError
from product_images.generative.ledger import Ledger
from product_images.imaging.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    digital_source_type,
)
from product_images.manifest import Manifest
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.store import LocalStore
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer
from product_images.wiring import wire

PLATFORMS = ["amazon", "google-merchant"]


@pytest.fixture(scope="module")
def server():
    with StandinServer(api_key="sk-test-SECRET-4242", hang_seconds=2.0) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server):
    server.reset()


def _settings(server, tmp_path, backend="gemini", **extra) -> Settings:
    keys = (
        {"gemini_api_key": server.api_key}
        if backend == "gemini"
        else {"openai_api_key": server.api_key}
    )
    return Settings(
        store=str(tmp_path / "out"),
        backend=backend,
        gemini_base_url=server.url,
        openai_base_url=server.url,
        master_side=768,
        retry_base_delay=0.0,
        retry_max_delay=0.05,
        **keys,
        **extra,
    )


def _run(settings, photo, sku="G-1", **request):
    # made again each time (force), as a rerun through `retry` or `--force` would be
    fields = {"name": "Trail Mug", "force": True, **request}
    req = ProductRequest(sku=sku, source=str(photo), platforms=PLATFORMS, **fields)
    return run_product(req, wire(settings, LocalStore(Path(settings.store.url))))


def _manifest(settings, sku="G-1") -> Manifest:
    return Manifest.model_validate_json(
        LocalStore(Path(settings.store.url)).get(f"{sku}/manifest.json")
    )


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_scene_and_detail_are_generated_white_stays_local(server, photo, tmp_path, backend):
    settings = _settings(server, tmp_path, backend)
    result = _run(settings, photo)
    assert result.status == "done", result.message
    masters = {m.variant: m for m in _manifest(settings).masters}
    assert masters["white"].generated_by is None  # confident cut-out: free
    assert masters["scene"].generated_by and masters["detail"].generated_by
    manifest = _manifest(settings)
    assert [c.outcome for c in manifest.calls] == ["ok", "ok"]
    assert manifest.cost_usd > 0 and result.paid_calls == 2
    assert server.calls == 2
    assert all(o.passed for o in manifest.outputs), [o for o in manifest.outputs if not o.passed]


def test_outputs_of_generated_masters_carry_ai_provenance(server, photo, tmp_path):
    settings = _settings(server, tmp_path)
    _run(settings, photo)
    store = LocalStore(Path(settings.store.url))
    assert (
        digital_source_type(store.get("G-1/google-merchant/scene.jpg")) == TRAINED_ALGORITHMIC_MEDIA
    )
    assert digital_source_type(store.get("G-1/amazon/detail.jpg")) == TRAINED_ALGORITHMIC_MEDIA
    assert digital_source_type(store.get("G-1/amazon/main.jpg")) is None
    _assert_manifest_matches_the_files(settings)


def _assert_manifest_matches_the_files(settings) -> None:
    """Every output's recorded DigitalSourceType is the one in its file's XMP."""
    store = LocalStore(Path(settings.store.url))
    for output in _manifest(settings).outputs:
        assert digital_source_type(store.get(output.key)) == output.digital_source_type, output.key


def test_a_backdrop_scene_is_the_real_product_on_a_generated_set(server, photo, tmp_path):
    settings = _settings(server, tmp_path, generated_scene="backdrop")
    result = _run(settings, photo)
    assert result.status == "done", result.message
    masters = {m.variant: m for m in _manifest(settings).masters}
    scene, cutout = masters["scene"], _manifest(settings).cutout
    assert scene.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert scene.generated_by == settings.generation.gemini_model and cutout is not None
    assert scene.confidence <= cutout.confidence  # the cut-out's pixels, so its doubts
    assert masters["detail"].digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert masters["white"].digital_source_type is None
    prompts = [r.json["contents"][0]["parts"][0]["text"] for r in server.requests]
    assert sum("do NOT draw the product" in p for p in prompts) == 1 and server.calls == 2
    store = LocalStore(Path(settings.store.url))
    scene = store.get("G-1/google-merchant/scene.jpg")
    assert digital_source_type(scene) == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    _assert_manifest_matches_the_files(settings)
    assert all(o.passed for o in _manifest(settings).outputs)


def test_a_rerun_of_an_unchanged_product_makes_no_call(server, photo, tmp_path):
    settings = _settings(server, tmp_path)
    _run(settings, photo)
    calls = server.calls
    result = _run(settings, photo)
    assert server.calls == calls and result.paid_calls == 0
    assert {c.outcome for c in _manifest(settings).calls} == {"cached"}


def test_editing_a_template_regenerates_only_its_variant(server, photo, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "scene.txt").write_text("Show $name in a sunny kitchen.")
    _run(_settings(server, tmp_path), photo)
    before = server.calls
    _run(_settings(server, tmp_path, templates_dir=templates), photo)
    assert server.calls == before + 1
    calls = {c.variant: c.outcome for c in _manifest(_settings(server, tmp_path)).calls}
    assert calls == {"scene": "ok", "detail": "cached"}


def test_low_confidence_cutout_gets_a_generated_white_master(server, tmp_path):
    image, _ = draw_product(size=(700, 500))
    noise = np.random.default_rng(1).integers(-70, 70, (500, 700, 3))
    busy = tmp_path / "busy.png"
    Image.fromarray(np.clip(np.asarray(image).astype(int) + noise, 0, 255).astype(np.uint8)).save(
        busy
    )
    # The classical cut-out doubts this noisy photo (the neural one, when its file is present,
    # does not): what is tested is the routing of a doubtful cut-out's white master.
    settings = _settings(server, tmp_path, segmenter="classical")
    assert _run(settings, busy).status == "done"
    manifest = _manifest(settings)
    white = next(m for m in manifest.masters if m.variant == "white")
    assert white.generated_by == settings.generation.gemini_model
    main = next(o for o in manifest.outputs if o.slot == "main" and o.platform == "amazon")
    assert main.passed, main.checks


def test_budget_caps_the_run_and_skips_the_rest(server, tmp_path):
    for n in range(4):  # different photos: the cache must not make them free
        draw_product(size=(600, 450), colour=(40 + 50 * n, 90, 150))[0].save(tmp_path / f"{n}.jpg")
    rows = "\n".join(f"P{n},{n}.jpg" for n in range(4))
    (tmp_path / "c.csv").write_text(f"sku,source\n{rows}\n")
    settings = _settings(server, tmp_path)
    catalog = load_catalog(str(tmp_path / "c.csv"), PLATFORMS, run_id="budget-run", budget_usd=0.45)
    results = [
        run_product(r, wire(settings, LocalStore(Path(settings.store.url))))
        for r in catalog.requests
    ]
    statuses = [r.status for r in results]
    assert statuses[0] == "done" and "skipped" in statuses and "failed" not in statuses
    assert all(r.reason == "budget" for r in results if r.status == "skipped")
    spent = sum(e.cost_usd for e in Ledger(LocalStore(Path(settings.store.url))).entries())
    assert spent <= 0.45


def test_content_blocked_fails_the_product_with_its_reason(server, photo, tmp_path):
    server.script("safety", "safety")
    result = _run(_settings(server, tmp_path), photo)
    assert result.status == "failed" and result.reason == "content_blocked"


def test_retryable_faults_are_retried_and_every_attempt_is_in_the_ledger(server, photo, tmp_path):
    server.script("429-retryinfo:0.01s", "503", "text-only")
    settings = _settings(server, tmp_path)
    assert _run(settings, photo).status == "done"
    outcomes = [e.outcome for e in Ledger(LocalStore(Path(settings.store.url))).entries()]
    assert sorted(outcomes) == sorted(["rate_limited", "upstream_error", "no_image", "ok", "ok"])


def test_the_key_is_never_written_anywhere(server, photo, tmp_path):
    server.script("403", "403")
    settings = _settings(server, tmp_path)
    result = _run(settings, photo)
    assert result.status == "failed" and server.api_key not in result.message
    _run(_settings(server, tmp_path), photo, sku="G-2")
    for path in Path(settings.store.url).rglob("*"):
        if path.is_file():
            assert server.api_key.encode() not in path.read_bytes(), path


def test_wrong_aspect_answer_is_reframed_locally(server, photo, tmp_path):
    server.script("wrong-aspect", "wrong-aspect")
    settings = _settings(server, tmp_path)
    assert _run(settings, photo).status == "done"
    scene = next(m for m in _manifest(settings).masters if m.variant == "scene")
    assert (scene.width, scene.height) == (768, 768)
    assert any("re-framed" in note for note in scene.notes)


def test_a_drifted_product_is_regenerated_once_then_flagged(server, photo, tmp_path):
    server.script("drift", "drift", "drift")
    settings = _settings(server, tmp_path, max_regenerations=1)
    result = _run(settings, photo)
    assert result.status == "done" and result.needs_review
    manifest = _manifest(settings)
    drifted = [f for f in manifest.needs_review if "drifted" in f.reason]
    assert drifted and all(f.confidence < settings.generation.fidelity_threshold for f in drifted)
    assert server.calls == 4  # scene and detail each: the first take and one regeneration


def test_cli_run_with_gemini_environment_records_calls_and_cost(
    server, photo, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from product_images.cli.main import main
    from product_images.settings import get_settings

    monkeypatch.setenv("GEMINI_API_KEY", server.api_key)
    monkeypatch.setenv("GEMINI_BASE_URL", server.url)
    monkeypatch.setenv("PRODUCT_IMAGES_RETRY_BASE_DELAY", "0")
    get_settings.cache_clear()
    try:
        out = tmp_path / "cli-out"
        args = [
            "run",
            str(photo),
            "--sku",
            "C-1",
            "--store",
            str(out),
            "--engine",
            "inline",
            "--platforms",
            "amazon,instagram",
        ]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "2 paid calls" in result.output and server.api_key not in result.output
    manifest = Manifest.model_validate_json((out / "C-1" / "manifest.json").read_text())
    assert len(manifest.calls) == 2 and manifest.cost_usd > 0
    assert {m.variant for m in manifest.masters} == {"white", "scene", "detail"}
    costs = CliRunner().invoke(main, ["costs", "--store", str(out), "--by", "model"])
    assert "gemini-3-pro-image" in costs.output and "2 calls" in costs.output


def test_a_scene_background_is_sent_as_a_reference_image(server, photo, tmp_path):
    backdrop = tmp_path / "beach.jpg"
    Image.new("RGB", (640, 480), (230, 200, 150)).save(backdrop)
    settings = _settings(server, tmp_path, scene_background=str(backdrop))
    assert _run(settings, photo).status == "done"
    scene = next(r.json for r in server.requests if r.json and "Lifestyle" in str(r.json))
    images = [p for p in scene["contents"][0]["parts"] if "inline_data" in p or "inlineData" in p]
    assert len(images) == 2


@pytest.mark.s3
def test_two_workers_racing_on_one_product_pay_once(server, photo, tmp_path, s3_store, s3_env):
    import threading

    from product_images.store import open_store

    server.latency = 0.4  # long enough for the two workers to overlap
    settings = _settings(server, tmp_path).model_copy(update={"store": s3_store.url})
    results = []

    def worker(n):  # each worker has its own store client, as on another machine
        request = ProductRequest(sku="RACE", source=str(photo), platforms=PLATFORMS, run_id=f"w{n}")
        results.append(run_product(request, wire(settings, open_store(s3_store.url))))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.latency = 0.0
    assert [r.status for r in results] == ["done", "done"]
    assert server.calls == 2  # scene and detail, once each
    assert sorted(r.paid_calls for r in results) in ([0, 2], [1, 1])


def _edited_catalogue(directory: Path, factor: float) -> Path:
    """The built-in gemini.yaml with gemini-3-pro-image `factor` times dearer and deprecated."""
    data = yaml.safe_load(
        resources.files("product_images.model_catalogue").joinpath("gemini.yaml").read_bytes()
    )
    for model in data["models"]:
        if model["id"] == "gemini-3-pro-image":
            model["input_usd_per_million"] *= factor
            model["output_usd_per_million"] *= factor
            model.update(status="deprecated", replacements=["gemini-nano-banana-2.1"])
        elif "gemini-3-pro-image" in model.get("replacements", []):
            model["replacements"] = ["gemini-nano-banana-2.1"]
    data["default"] = "gemini-nano-banana-2.1"
    directory.mkdir()
    (directory / "gemini.yaml").write_text(yaml.safe_dump(data))
    return directory


def test_the_model_catalogue_file_sets_costs_and_warnings_of_a_run(server, photo, tmp_path):
    before = _settings(server, tmp_path / "a", gemini_model="gemini-3-pro-image")
    _run(before, photo)
    models_dir = _edited_catalogue(tmp_path / "models", 3.0)
    after = _settings(
        server, tmp_path / "b", gemini_model="gemini-3-pro-image", model_catalogue_dir=models_dir
    )
    _run(after, photo)
    old, new = _manifest(before), _manifest(after)
    assert new.cost_usd == pytest.approx(3 * old.cost_usd, rel=1e-3) and old.cost_usd > 0
    scene = next(m for m in new.masters if m.variant == "scene")
    assert any("'gemini-3-pro-image' is deprecated" in n for n in scene.notes), scene.notes
    assert not any("deprecated" in n for m in old.masters for n in m.notes)


def test_a_shut_down_model_fails_before_any_call(server, photo, tmp_path):
    settings = _settings(server, tmp_path, gemini_model="gemini-2.5-flash-image")
    with pytest.raises(ModelRetiredError, match="set GEMINI_MODEL to gemini-3-pro-image"):
        _run(settings, photo)
    assert server.calls == 0
