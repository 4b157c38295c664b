import json
import re
import threading
import uuid

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.client.schemas.objects import Artifact
from prefect.runtime import flow_run

import product_images.flows.artifacts as artifacts
from product_images.flows.artifacts import (
    MAX_KEY_LENGTH,
    ProgressReporter,
    artifact_key,
    publish_run_artifacts,
)
from product_images.flows.process_catalog import process_catalog
from product_images.manifest import Manifest, ProductResult, ReviewFlag
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings, get_settings
from product_images.store import LocalStore
from product_images.summary import CatalogSummary
from product_images.wiring import wire

FAILED = ProductResult(
    sku="BAD-1", status="failed", reason="corrupt_image", message="bad.jpg: truncated JPEG"
)
SKIPPED = ProductResult(sku="LATE-1", status="skipped", reason="budget_exceeded", message="cap")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real local run of two products (one then flagged for review), a failed and a skipped."""
    store = LocalStore(tmp_path_factory.mktemp("artifacts") / "store")
    photo = photo_path(tmp_path_factory)
    done = [
        run_product(_request(photo, sku), wire(_settings(store), store))
        for sku in ("OK-1", "REV-1")
    ]
    assert [r.status for r in done] == ["done", "done"], done
    return CatalogSummary(
        results=[done[0], _flag_for_review(done[1], store), FAILED, SKIPPED]
    ), store


def _flag_for_review(result, store):
    """What the pipeline records when its cut-out is unsure (a drawn photo never is)."""
    manifest = Manifest.model_validate_json(store.get(result.manifest_key))
    flag = ReviewFlag(step="cutout", reason="low contrast edge", confidence=0.41)
    manifest.needs_review.append(flag)
    store.put(result.manifest_key, manifest.model_dump_json().encode())
    return result.model_copy(update={"needs_review": True})


def photo_path(factory):
    from product_images.testing.fixtures.images import draw_product

    path = factory.mktemp("photo") / "photo.jpg"
    draw_product(size=(600, 450))[0].save(path, quality=92)
    return path


def _request(photo, sku):
    return ProductRequest(sku=sku, source=str(photo), platforms=["amazon"])


def _settings(store):
    return Settings(store=store.url, master_side=512, backend="local")


def _label():
    return f"test {uuid.uuid4().hex[:8]}"


def _artifacts(flow_run_id=None, key=None) -> list[Artifact]:
    artifact_filter = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
        key=ArtifactFilterKey(any_=[key]) if key else None,
    )
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=artifact_filter)


def _by_type(flow_run_id) -> dict[str, Artifact]:
    found = _artifacts(flow_run_id=flow_run_id)
    assert len({a.type for a in found}) == len(found), found
    return {a.type: a for a in found}


@flow
def publish_flow(summary: CatalogSummary, store_root: str, label: str) -> str:
    publish_run_artifacts(summary, LocalStore(store_root), run_label=label)
    reporter = ProgressReporter(label)
    reporter.start(len(summary.results))
    for _ in summary.results:
        reporter.advance()
    return str(flow_run.get_id())


@flow
def progress_flow(
    total: int, label: str, threads: int, min_interval: float, min_step: float
) -> str:
    reporter = ProgressReporter(label, min_interval=min_interval, min_step=min_step)
    reporter.start(total)
    workers = [
        threading.Thread(target=lambda: [reporter.advance() for _ in range(total // threads)])
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return str(flow_run.get_id())


def test_run_artifacts_hold_every_output_and_every_failure(run):
    summary, store = run
    label = _label()
    found = _by_type(uuid.UUID(publish_flow(summary, str(store.root), label)))
    assert set(found) == {"table", "markdown", "progress"}

    table = found["table"]
    assert table.key == artifact_key("catalog", label, "outputs")
    rows = json.loads(table.data)
    manifest = Manifest.model_validate_json(store.get("OK-1/manifest.json"))
    ok_rows = [r for r in rows if r["sku"] == "OK-1"]
    assert {(r["platform"], r["slot"]) for r in ok_rows} == {
        (o.platform, o.slot) for o in manifest.outputs
    }
    main = next(r for r in ok_rows if r["slot"] == "main")
    output = next(o for o in manifest.outputs if o.slot == "main")
    assert main["status"] == "done" and main["variant"] == "white"
    assert main["checks"] == f"{len(output.checks)}/{len(output.checks)} passed"
    assert main["failed_rules"] == ""
    assert main["size"] == f"{output.width}x{output.height}" and main["bytes"] == output.bytes
    assert main["link"] == store.link(output.key)
    review = [r for r in rows if r["sku"] == "REV-1"]
    assert review and all(
        r["status"] == "needs_review" and "confidence" in r["reason"] for r in review
    )
    (bad,) = [r for r in rows if r["sku"] == "BAD-1"]
    assert bad["status"] == "failed" and bad["reason"] == "corrupt_image: bad.jpg: truncated JPEG"
    (late,) = [r for r in rows if r["sku"] == "LATE-1"]
    assert late["status"] == "skipped" and late["link"] == ""

    markdown = found["markdown"].data
    assert found["markdown"].key == artifact_key("catalog", label, "summary")
    for sku in ("OK-1", "REV-1", "BAD-1", "LATE-1"):
        assert sku in markdown
    review_manifest = Manifest.model_validate_json(store.get("REV-1/manifest.json"))
    whites = [
        next(m for m in m_.masters if m.variant == "white") for m_ in (manifest, review_manifest)
    ]
    for shown in (*whites, output):
        assert f"]({store.link(shown.key)})" in markdown
    assert "`corrupt_image` × 1" in markdown and "truncated JPEG" in markdown
    assert "needs review: cutout: low contrast edge (confidence 0.41)" in markdown
    assert "| 4 | 2 | 1 | 1 | 1 | 0 | 0.0000 |" in markdown

    assert found["progress"].data == 100.0
    assert found["progress"].description == "4 of 4 products finished"


def test_markdown_stays_bounded_for_a_big_catalog(run, monkeypatch):
    summary, store = run
    done = summary.results[0]
    many = [done.model_copy(update={"sku": f"OK-{n}"}) for n in range(120)]
    failed = [FAILED.model_copy(update={"sku": f"BAD-{n}"}) for n in range(150)]
    monkeypatch.setattr(artifacts, "MAX_DETAILED_PRODUCTS", 60)
    found = _by_type(
        uuid.UUID(publish_flow(CatalogSummary(results=many + failed), str(store.root), _label()))
    )
    markdown = found["markdown"].data
    assert markdown.count("![") == 2 * 50
    assert "70 more done products" in markdown and "50 more: see the outputs table" in markdown
    assert len(markdown) < 60_000
    rows = json.loads(found["table"].data)
    outputs = len(Manifest.model_validate_json(store.get("OK-1/manifest.json")).outputs)
    assert len([r for r in rows if r["sku"] == "OK-10"]) == outputs
    assert len([r for r in rows if r["sku"] == "OK-100"]) == 1  # past the detail limit
    assert len(rows) == 60 * outputs + 60 + 150


def test_an_unreadable_manifest_or_a_failing_artifact_never_fails_the_run(run, monkeypatch, caplog):
    _, store = run
    lost = ProductResult(sku="LOST-1", status="done", manifest_key="LOST-1/manifest.json")

    def broken(*args, **kwargs):
        raise RuntimeError("artifact API down")

    monkeypatch.setattr(artifacts, "create_table_artifact", broken)
    found = _by_type(
        uuid.UUID(publish_flow(CatalogSummary(results=[lost, FAILED]), str(store.root), _label()))
    )
    assert "table" not in found
    assert "the table artifact failed: RuntimeError('artifact API down')" in caplog.text
    assert "LOST-1" in found["markdown"].data and "manifest unreadable" in found["markdown"].data
    assert found["progress"].data == 100.0


def test_progress_is_rate_limited_thread_safe_and_always_ends_at_100(monkeypatch):
    posted: list[float] = []
    real = artifacts.update_progress_artifact

    def spy(artifact_id, progress, **kwargs):
        posted.append(progress)
        return real(artifact_id, progress, **kwargs)

    monkeypatch.setattr(artifacts, "update_progress_artifact", spy)
    found = _by_type(uuid.UUID(progress_flow(400, _label(), 8, 3600.0, 1.0)))
    assert found["progress"].data == 100.0
    assert posted == [100.0]  # everything in between fell inside the interval

    posted.clear()
    found = _by_type(uuid.UUID(progress_flow(100, _label(), 1, 0.0, 10.0)))
    assert found["progress"].data == 100.0
    assert posted == [10.0 * n for n in range(1, 11)]


def test_a_failing_progress_api_costs_one_call_and_never_fails_the_run(monkeypatch):
    calls: list[float] = []

    def broken(artifact_id, progress, **kwargs):
        calls.append(progress)
        raise RuntimeError("artifact API down")

    monkeypatch.setattr(artifacts, "update_progress_artifact", broken)
    found = _by_type(uuid.UUID(progress_flow(100, _label(), 4, 0.0, 1.0)))
    assert len(calls) == 1
    assert found["progress"].data < 100.0  # as far as it got before the API failed


def test_progress_finish_and_an_empty_catalog_report_100():
    @flow
    def partial(label: str) -> str:
        reporter = ProgressReporter(label)
        reporter.start(10)
        reporter.advance(3)
        reporter.finish()
        ProgressReporter(label + " empty").start(0)
        return str(flow_run.get_id())

    label = _label()
    found = _artifacts(flow_run_id=uuid.UUID(partial(label)))
    assert {a.key: a.data for a in found} == {
        artifact_key("catalog", label, "progress"): 100.0,
        artifact_key("catalog", label, "empty", "progress"): 100.0,
    }


def test_outside_a_run_nothing_is_published_and_nothing_fails(run):
    summary, store = run
    label = _label()
    publish_run_artifacts(summary, store, run_label=label)
    reporter = ProgressReporter(label)
    reporter.start(2)
    reporter.advance(2)
    reporter.finish()
    assert reporter.artifact_id is None and reporter.percent == 100.0
    for part in ("outputs", "summary", "progress"):
        assert _artifacts(key=artifact_key("catalog", label, part)) == []


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("catalog", "Spring 2026", "outputs"), "catalog-spring-2026-outputs"),
        (("s3://Bucket/Spring/catalog.csv",), "s3-bucket-spring-catalog-csv"),
        (("A__B", "--c--"), "a-b-c"),
        (("Café Crème",), "cafe-creme"),
        (("already-valid-42",), "already-valid-42"),
        (("",), "artifact"),
        (("!!!", "///"), "artifact"),
        ((), "artifact"),
    ],
)
def test_artifact_key_cases(parts, expected):
    assert artifact_key(*parts) == expected


def test_long_artifact_keys_are_bounded_valid_and_distinct():
    first, second = artifact_key("x" * 200 + "a"), artifact_key("x" * 200 + "b")
    for key in (first, second):
        assert len(key) <= MAX_KEY_LENGTH and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key)
    assert first != second
    assert artifact_key("y" * MAX_KEY_LENGTH) == "y" * MAX_KEY_LENGTH


@pytest.mark.s3
def test_presigned_links_expire_after_the_setting(s3_store, monkeypatch):
    s3_store.put("S-1/amazon/main.jpg", b"jpeg", "image/jpeg")
    assert "X-Amz-Expires=86400" in artifacts._link(s3_store, "S-1/amazon/main.jpg")  # 24 h
    monkeypatch.setenv("PRODUCT_IMAGES_LINK_EXPIRY_HOURS", "2")
    get_settings.cache_clear()
    assert "X-Amz-Expires=7200" in artifacts._link(s3_store, "S-1/amazon/main.jpg")


def test_catalog_artifacts_are_keyed_by_the_run_not_the_file(tmp_path):
    photo = photo_path_at(tmp_path)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(f"sku,source\nK-1,{photo}\n")
    state = process_catalog(
        catalog=str(catalog), platforms=["amazon"], store=str(tmp_path / "o"), return_state=True
    )
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        name = client.read_flow_run(run_id).name
    keys = {a.key for a in _artifacts(flow_run_id=run_id)}
    assert keys == {
        artifact_key("catalog", name, part) for part in ("outputs", "summary", "progress")
    }
    assert not any("catalog-catalog" in key for key in keys)


def photo_path_at(folder):
    from product_images.testing.fixtures.images import draw_product

    path = folder / "photo.jpg"
    draw_product(size=(600, 450))[0].save(path, quality=92)
    return path
