"""`product-images retry` reruns exactly what was asked, through either engine.

The request a product was made from is recorded whole in its status and handed back whole to
the flow or the inline engine, so a retry asks the generative backend for the very same
images: with them in the generation cache, it makes no paid call. (Before, the prefect engine
rebuilt the request without `brand_style`: the scene prompt changed, the cache missed and the
retry paid again.)
"""

import pytest
from click.testing import CliRunner

from product_images.cli.main import main
from product_images.generative.ledger import Ledger
from product_images.manifest import Manifest, ProductResult
from product_images.status import last_statuses, record_status
from product_images.store import LocalStore
from product_images.testing.standin import StandinServer

KEY = "retry-test-key"
STYLE = "Scandinavian oak and linen"


@pytest.fixture
def standin(monkeypatch):
    with StandinServer(api_key=KEY) as server:
        for name, value in {
            "GEMINI_API_KEY": KEY,
            "PRODUCT_IMAGES_BACKEND": "gemini",
            "PRODUCT_IMAGES_GEMINI_BASE_URL": server.url,
            "PRODUCT_IMAGES_MASTER_SIDE": "384",
            "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE": "1K",
            "PRODUCT_IMAGES_WHITE_FROM_LOCAL_ABOVE": "1.01",  # the white master is paid too
        }.items():
            monkeypatch.setenv(name, value)
        yield server


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("engine", ["inline", "prefect"])
def test_a_retry_through_either_engine_hits_the_generation_cache(engine, standin, photo, tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        f"sku,source,name,brand_style,scene_hint\nR-1,{photo},Desk lamp,{STYLE},a sunlit study\n"
    )
    out = tmp_path / "out"
    first = _invoke("batch", catalog, "--store", out, "--platforms", "amazon", "--engine", "inline")
    assert first.exit_code == 0, first.output
    store = LocalStore(out)
    paid, entries = standin.calls, len(Ledger(store).entries())
    assert paid >= 3 and entries == paid  # white, scene and detail (and retakes), all paid
    # A later run of it was deferred (an outage): its status keeps the request it was given.
    [status] = last_statuses(store)
    assert (status.request.brand_style, status.request.scene_hint) == (STYLE, "a sunlit study")
    deferred = ProductResult(sku="R-1", status="deferred", reason="upstream_error", message="503")
    record_status(store, status.request, deferred)

    retried = _invoke("retry", "--store", out, "--engine", engine)

    assert retried.exit_code == 0 and "1 products: 1 done" in retried.output, retried.output
    assert standin.calls == paid  # no request reached the API
    assert len(Ledger(store).entries()) == entries  # nothing paid, nothing booked
    manifest = Manifest.model_validate_json(store.get("R-1/manifest.json"))
    assert {c.outcome for c in manifest.calls} == {"cached"}
    assert [s.request.brand_style for s in last_statuses(store)] == [STYLE]
