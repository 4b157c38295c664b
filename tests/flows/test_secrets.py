"""Keys never leak: a failing catalog run with known keys, then every trace of it is searched.

Searched: every log record (all loggers, DEBUG), stdout/stderr, the run summary, every object
written to the store (manifests, status records, ledger, cache, artifacts' pages), and what
the Prefect API kept (flow-run logs, artifacts).
"""

import logging
import uuid

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client

from product_images.flows.process_catalog import process_catalog
from product_images.flows.process_product import process_product
from product_images.manifest import Manifest
from product_images.request import ProductRequest
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer

GEMINI_KEY = "AIzaSy-TEST-KEY-" + uuid.uuid4().hex
WRONG_KEY = "AIzaSy-WRONG-KEY-" + uuid.uuid4().hex
FAULTS = ["400", "safety", "429-retryinfo:0.1s", "500", "malformed", "503", "ok", "ok"]


def _catalog(folder, name):
    rows = ["sku,source,name"]
    green = 90 + 3 * len(name)  # each catalog has its own photos: the second run makes them anew
    for n in range(4):
        path = folder / f"{name}{n}.jpg"
        draw_product(size=(420, 360), colour=(60 + 40 * n, green, 160))[0].save(path)
        rows.append(f"S{n},{path},{name} {n}")
    (folder / "bad.jpg").write_bytes(b"<html>403 Forbidden</html>")
    rows.append(f"BAD,{folder / 'bad.jpg'},Broken")
    path = folder / f"{name}.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def standin(monkeypatch):
    with StandinServer(api_key=GEMINI_KEY, hang_seconds=1.0) as server:
        for name, value in {
            "GEMINI_API_KEY": GEMINI_KEY,
            "PRODUCT_IMAGES_BACKEND": "gemini",
            "PRODUCT_IMAGES_GEMINI_BASE_URL": server.url,
            "PRODUCT_IMAGES_MASTER_SIDE": "384",
            "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE": "512",
            "PRODUCT_IMAGES_RETRY_BASE_DELAY": "0",
            "PRODUCT_IMAGES_RETRY_MAX_DELAY": "0.05",
            "PRODUCT_IMAGES_MAX_ATTEMPTS": "2",
            "PRODUCT_IMAGES_BREAKER_COOLDOWN": "0.2",
        }.items():
            monkeypatch.setenv(name, value)
        yield server


def _store_texts(store) -> list[tuple[str, bytes]]:
    return [(key, store.get(key)) for key in store.list()]


def _prefect_texts(flow_run_ids) -> list[str]:
    with get_client(sync_client=True) as client:
        logs = [log.message for log in client.read_logs()]
        artifacts = [f"{a.key} {a.data} {a.description}" for a in client.read_artifacts()]
        runs = [client.read_flow_run(i).model_dump_json() for i in flow_run_ids]
    return logs + artifacts + runs


@pytest.mark.s3
def test_a_failing_run_leaks_no_key_anywhere(
    tmp_path, standin, s3_store, s3_env, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    standin.script(*FAULTS)
    first = process_catalog.with_options(log_prints=True)(
        catalog=str(_catalog(tmp_path, "Mug")),
        platforms=["amazon"],
        store=s3_store.url,
        tag="leak-check",
    )
    assert first.failed and first.done  # faults really happened, and work was done too
    monkeypatch.setenv("GEMINI_API_KEY", WRONG_KEY)  # now every call is refused
    from product_images.settings import get_settings

    get_settings.cache_clear()
    second = process_catalog(
        catalog=str(_catalog(tmp_path, "Teacup")), platforms=["amazon"], store=s3_store.url
    )
    assert any(r.reason == "auth" for r in second.results), second.lines()

    secrets = [GEMINI_KEY, WRONG_KEY, s3_env.secret_key]
    out, err = capfd.readouterr()
    texts = [caplog.text, out, err, first.model_dump_json(), second.model_dump_json()]
    texts += [r.getMessage() + str(r.exc_info) for r in caplog.records]
    for secret in secrets:
        for text in texts:
            assert secret not in text
        for key, data in _store_texts(s3_store):
            assert secret.encode() not in data, key
    prefect_texts = _prefect_texts([])
    assert prefect_texts and not [t for t in prefect_texts for s in secrets if s in t]


def test_the_api_key_can_come_from_a_prefect_secret_block(standin, tmp_path, monkeypatch, photo):
    block = f"gemini-key-{uuid.uuid4().hex[:8]}"
    Secret(value=GEMINI_KEY).save(block)
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("PRODUCT_IMAGES_GEMINI_API_KEY_BLOCK", block)
    result = process_product(
        ProductRequest(sku="BLOCK-1", source=str(photo), platforms=["amazon"]),
        store=str(tmp_path / "out"),
    )
    assert result.status == "done", result.message
    manifest = Manifest.model_validate_json((tmp_path / "out/BLOCK-1/manifest.json").read_bytes())
    assert any(m.generated_by for m in manifest.masters) and standin.calls >= 1
