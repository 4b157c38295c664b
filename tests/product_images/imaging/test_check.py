"""The compliance check: rules read from the encoded bytes; a file that does not decode to
its end is refused whether or not a rule needs its pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from product_images.errors import CorruptImageError
from product_images.imaging.check import check_image
from product_images.specs import SlotSpec, load_specs

SLOTS = {f"{p.name}/{s.name}": s for p in load_specs().values() for s in p.slots}
PIXEL_RULES = ["amazon/main", "instagram/product-white"]  # pure white; product fill
HEADER_RULES = ["amazon/scene", "instagram/story"]


def _jpeg(slot: SlotSpec) -> bytes:
    width, height = slot.width or 1200, slot.height or 1200
    pixels = np.full((height, width, 3), 255, np.uint8)
    pixels[height // 10 : -height // 10, width // 10 : -width // 10] = (40, 90, 160)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("name", PIXEL_RULES + HEADER_RULES)
def test_a_truncated_file_is_refused(name: str) -> None:
    data = _jpeg(SLOTS[name])
    with pytest.raises(CorruptImageError, match="truncated"):
        check_image(data[: len(data) * 2 // 3], SLOTS[name])


@pytest.mark.parametrize("name", HEADER_RULES)
def test_header_rules_measure_the_full_image(name: str) -> None:
    slot = SLOTS[name]
    results = {r.rule: r for r in check_image(_jpeg(slot), slot)}
    assert set(results) == {"format", "size", "bytes", "colour_space"}
    width, height = slot.width or 1200, slot.height or 1200
    assert results["size"].measured == f"{width}x{height}"  # not the reduced decode's size


@pytest.mark.parametrize("name", PIXEL_RULES)
def test_pixel_rules_see_every_pixel(name: str) -> None:
    slot = SLOTS[name]
    data = _jpeg(slot)
    results = {r.rule: r for r in check_image(data, slot)}
    assert "white_background" in results or "product_fill" in results
    if "product_fill" in results:
        assert float(results["product_fill"].measured) == pytest.approx(0.8, abs=0.01)
