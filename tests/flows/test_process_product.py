import logging

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from product_images.errors import CorruptImageError, InvalidSkuError, MissingSourceError
from product_images.flows.process_product import process_product
from product_images.manifest import Manifest
from product_images.request import ProductRequest
from product_images.store import LocalStore
from product_images.thumbnails import thumbnail_key


def test_flow_publishes_a_product(photo, tmp_path):
    store = str(tmp_path / "out")
    result = process_product(
        ProductRequest(sku="P-1", source=str(photo), platforms=["amazon"]), store=store
    )
    assert result.status == "done"
    manifest = Manifest.model_validate_json(LocalStore(tmp_path / "out").get("P-1/manifest.json"))
    assert {o.slot for o in manifest.outputs} == {"main", "scene", "detail"}


def test_flow_fails_with_the_typed_error_on_a_bad_photo(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(CorruptImageError, match=r"bad\.jpg"):
        process_product(
            ProductRequest(sku="P-2", source=str(bad), platforms=["amazon"]),
            store=str(tmp_path / "o"),
        )
    assert not (tmp_path / "o" / "P-2" / "manifest.json").exists()


def test_flow_refuses_an_unsafe_sku(photo, tmp_path):
    with pytest.raises(InvalidSkuError):
        process_product(ProductRequest(sku="../x", source=str(photo)), store=str(tmp_path / "o"))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def run_log():
    """Every record of Prefect's flow and task run loggers, after their filters ran."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("sku", "source", "error"),
    [("M-1", "missing.jpg", MissingSourceError), ("../etc", "x.jpg", InvalidSkuError)],
)
def test_bad_input_is_one_clear_line_without_a_traceback(tmp_path, run_log, sku, source, error):
    with pytest.raises(error):
        process_product(
            ProductRequest(sku=sku, source=str(tmp_path / source)), store=str(tmp_path / "o")
        )
    failures = [r for r in run_log if r.levelno >= logging.ERROR]
    assert failures, [r.getMessage() for r in run_log]
    assert all(r.exc_info is None and r.exc_text is None for r in run_log)
    assert any(error.__name__ in r.getMessage() for r in failures)


def test_a_product_run_publishes_its_page_with_thumbnails(photo, tmp_path):
    store = LocalStore(tmp_path / "out")
    state = process_product(
        ProductRequest(sku="P-3", source=str(photo), platforms=["amazon"]),
        store=str(store.root),
        return_state=True,
    )
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    assert artifact.key == "product-p-3" and artifact.type == "markdown"
    page = str(artifact.data)
    manifest = Manifest.model_validate_json(store.get("P-3/manifest.json"))
    for master in manifest.masters:
        thumb = thumbnail_key("P-3", master)
        assert store.exists(thumb) and f"]({store.link(thumb)})" in page
        assert f"[full size]({store.link(master.key)})" in page
    assert page.count("\n| amazon |") == len(manifest.outputs)
