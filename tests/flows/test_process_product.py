import pytest

from flows.process_product import process_product
from product_images.errors import CorruptImageError, InvalidSkuError
from product_images.manifest import Manifest
from product_images.store import LocalStore


def test_flow_publishes_a_product(photo, tmp_path):
    store = str(tmp_path / "out")
    result = process_product(sku="P-1", source=str(photo), platforms=["amazon"], store=store)
    assert result.status == "done"
    manifest = Manifest.model_validate_json(LocalStore(tmp_path / "out").get("P-1/manifest.json"))
    assert {o.slot for o in manifest.outputs} == {"main", "scene", "detail"}


def test_flow_fails_with_the_typed_error_on_a_bad_photo(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(CorruptImageError, match=r"bad\.jpg"):
        process_product(sku="P-2", source=str(bad), platforms=["amazon"], store=str(tmp_path / "o"))
    assert not (tmp_path / "o" / "P-2" / "manifest.json").exists()


def test_flow_refuses_an_unsafe_sku(photo, tmp_path):
    with pytest.raises(InvalidSkuError):
        process_product(sku="../x", source=str(photo), store=str(tmp_path / "o"))
