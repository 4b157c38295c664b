import json

import pytest

from product_images.catalog import load_catalog
from product_images.errors import CatalogError


def test_csv_rows_resolve_sources_relative_to_the_catalog(tmp_path):
    (tmp_path / "c.csv").write_text(
        "sku,source,platforms\nA-1,a.jpg,\nB-2,/abs/b.jpg,amazon;ebay\n"
    )
    catalog = load_catalog(str(tmp_path / "c.csv"), ["shopify"])
    first, second = catalog.requests
    assert first.source == str(tmp_path / "a.jpg") and first.platforms == ["shopify"]
    assert second.source == "/abs/b.jpg" and second.platforms == ["amazon", "ebay"]


def test_json_catalog(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"products": [{"sku": "A", "source": "a.png"}]}))
    assert load_catalog(str(tmp_path / "c.json"), ["amazon"]).requests[0].sku == "A"


def test_bad_rows_are_rejected_one_by_one(tmp_path):
    rows = "sku,source\nA,a.jpg\nA,b.jpg\n,c.jpg\n../x,d.jpg\nB,\nC,c.jpg\n"
    (tmp_path / "c.csv").write_text(rows)
    catalog = load_catalog(str(tmp_path / "c.csv"), ["amazon"])
    assert [r.sku for r in catalog.requests] == ["A", "C"]
    assert len(catalog.rejected) == 4
    assert all(r.reason == "invalid_sku" for r in catalog.rejected)
    assert any("duplicate" in r.message for r in catalog.rejected)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.json", "{not json", "not valid JSON"),
        ("c.csv", "name,price\nx,1\n", "missing column"),
        ("c.json", '{"products": 3}', "expected a list"),
    ],
)
def test_unreadable_catalogs_raise(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(str(tmp_path / name), ["amazon"])


def test_folder_of_photos_is_a_catalog(tmp_path):
    for name in ("b.jpg", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [r.sku for r in load_catalog(str(tmp_path), ["amazon"]).requests] == ["a", "b"]


@pytest.mark.s3
def test_s3_prefix_of_photos_is_a_catalog(s3_store, s3_env):
    s3_store.put("incoming/p-1.jpg", b"x")
    s3_store.put("incoming/readme.md", b"x")
    url = f"{s3_store.url.rstrip('/')}/incoming"
    requests = load_catalog(url, ["amazon"]).requests
    assert [(r.sku, r.source) for r in requests] == [("p-1", f"{url}/p-1.jpg")]
