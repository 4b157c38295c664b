import pytest

from product_images.flows.process_catalog import process_catalog
from product_images.testing.fixtures.images import draw_product


@pytest.fixture
def catalog(tmp_path):
    for n in range(3):
        image, _ = draw_product(size=(500, 400), colour=(40 + 60 * n, 80, 160))
        image.save(tmp_path / f"p{n}.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    rows = ["sku,source", "P0,p0.jpg", "P1,p1.jpg", "BAD,bad.jpg", "P2,p2.jpg", "P1,p1.jpg"]
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_catalog_flow_isolates_failures_and_summarises(catalog, tmp_path):
    store = tmp_path / "out"
    summary = process_catalog(catalog=str(catalog), platforms=["amazon"], store=str(store))
    by_sku = {(r.sku, r.status, r.reason) for r in summary.results}
    assert {("P0", "done", ""), ("P1", "done", ""), ("P2", "done", "")} <= by_sku
    assert ("BAD", "failed", "unsupported_image") in by_sku
    assert any(r.reason == "invalid_sku" and "duplicate" in r.message for r in summary.failed)
    assert summary.done == 3 and len(summary.failed) == 2
    assert all((store / sku / "manifest.json").exists() for sku in ("P0", "P1", "P2"))
    assert not (store / "BAD").exists()


@pytest.mark.s3
def test_catalog_flow_into_s3(catalog, s3_store, s3_env):
    summary = process_catalog(catalog=str(catalog), platforms=["amazon"], store=s3_store.url)
    assert summary.done == 3
    assert s3_store.exists("P0/manifest.json") and s3_store.exists("P2/amazon/main.jpg")


def test_a_second_refresh_of_an_unchanged_catalog_does_no_work(catalog, tmp_path):
    store = str(tmp_path / "out")
    process_catalog(catalog=str(catalog), platforms=["amazon"], store=store)
    summary = process_catalog(catalog=str(catalog), platforms=["amazon"], store=store)
    assert summary.unchanged == 3 and summary.done == 0
    forced = process_catalog(catalog=str(catalog), platforms=["amazon"], store=store, force=True)
    assert forced.done == 3


def test_catalog_flow_on_a_dask_cluster(catalog, tmp_path):
    pytest.importorskip("prefect_dask")
    from prefect_dask import DaskTaskRunner

    from product_images.flows.process_catalog import process_catalog as flow

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "processes": False})
    summary = flow.with_options(task_runner=runner)(
        catalog=str(catalog), platforms=["amazon"], store=str(tmp_path / "out")
    )
    assert summary.done == 3 and len(summary.failed) == 2


def test_a_refresh_redoes_only_products_whose_spec_file_changed(catalog, tmp_path, monkeypatch):
    from product_images.settings import get_settings
    from product_images.specs import BUILTIN_SPECS_DIR

    store = str(tmp_path / "out")
    process_catalog(catalog=str(catalog), platforms=["amazon"], store=store)
    process_catalog(catalog=str(catalog), platforms=["ebay"], store=str(tmp_path / "other"))
    specs = tmp_path / "specs"
    specs.mkdir()
    amazon = (BUILTIN_SPECS_DIR / "amazon.yaml").read_text()
    (specs / "amazon.yaml").write_text(amazon.replace("quality: 90", "quality: 87", 1))
    monkeypatch.setenv("PRODUCT_IMAGES_SPECS_DIR", str(specs))
    get_settings.cache_clear()
    try:
        redone = process_catalog(catalog=str(catalog), platforms=["amazon"], store=store)
        untouched = process_catalog(
            catalog=str(catalog), platforms=["ebay"], store=str(tmp_path / "other")
        )
    finally:
        get_settings.cache_clear()
    assert redone.done == 3 and untouched.unchanged == 3
