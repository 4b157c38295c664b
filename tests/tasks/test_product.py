"""The product task wires once per process, settings and store (not once per product)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from product_images.settings import get_settings
from product_images.tasks import product


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    get_settings.cache_clear()
    monkeypatch.setattr(product, "_WIRINGS", {})
    yield
    get_settings.cache_clear()


def test_products_of_one_process_share_their_wiring(fresh_settings: None, tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    first = product._wiring(url)
    assert product._wiring(url) is first
    assert product._wiring(str(tmp_path / "other")) is not first


def test_new_settings_get_a_new_wiring(
    fresh_settings: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "store")
    first = product._wiring(url)
    monkeypatch.setenv("PRODUCT_IMAGES_MASTER_SIDE", "640")
    get_settings.cache_clear()
    second = product._wiring(url)
    assert second is not first and second.settings.imaging.master_side == 640
