import io

import numpy as np
import pytest
from PIL import Image

from product_images.errors import RenderError
from product_images.imaging.check import check_image, product_fill
from product_images.imaging.encode import encode_for_slot
from product_images.imaging.render import frame_for_slot
from product_images.specs import SlotSpec

WHITE = SlotSpec(
    name="main",
    variant="white",
    width=1000,
    height=1000,
    fit="pad",
    fill=0.87,
    min_fill=0.85,
    pure_white=True,
    format="jpeg",
    quality=90,
)


def _white_master(side=800, product=(200, 300, 600, 500)):
    image = Image.new("RGB", (side, side), (255, 255, 255))
    image.paste((30, 60, 160), product)
    return image, product


@pytest.mark.parametrize(("width", "height"), [(1000, 1000), (1080, 1350), (1920, 1080)])
def test_pad_frames_product_at_the_fill_ratio(width, height):
    master, box = _white_master()
    slot = WHITE.model_copy(update={"width": width, "height": height})
    framed = frame_for_slot(master, box, slot)
    assert framed.size == (width, height)
    assert product_fill(np.asarray(framed), (255, 255, 255)) == pytest.approx(0.87, abs=0.01)


def test_pad_fills_outside_the_master_with_the_background():
    master, box = _white_master(side=400, product=(0, 0, 400, 400))
    slot = WHITE.model_copy(update={"background": "#EEEEEE", "pure_white": False, "fill": 0.5})
    framed = np.asarray(frame_for_slot(master, box, slot))
    assert tuple(framed[5, 5]) == (238, 238, 238)


def test_cover_crops_around_the_product():
    master = Image.new("RGB", (1000, 1000), (200, 200, 200))
    master.paste((255, 0, 0), (700, 400, 900, 600))
    slot = SlotSpec(name="story", variant="scene", width=540, height=960, fit="cover")
    framed = frame_for_slot(master, (700, 400, 900, 600), slot)
    assert framed.size == (540, 960)
    red = (np.asarray(framed)[..., 0] > 200) & (np.asarray(framed)[..., 1] < 60)
    assert red.any()


def test_encoded_white_slot_passes_every_check():
    master, box = _white_master()
    data, _ = encode_for_slot(frame_for_slot(master, box, WHITE), WHITE)
    results = check_image(data, WHITE)
    assert {r.rule for r in results} == {
        "format",
        "size",
        "bytes",
        "colour_space",
        "white_background",
        "product_fill",
    }
    assert all(r.passed for r in results), results


def test_byte_budget_is_met_by_lowering_quality():
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 600, 3), np.uint8))
    slot = SlotSpec(
        name="s",
        variant="scene",
        width=600,
        height=600,
        fit="cover",
        max_bytes=150_000,
        min_quality=10,
    )
    data, _ = encode_for_slot(noisy, slot)
    assert len(data) <= 150_000


def test_byte_budget_shrinks_free_size_slots():
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), np.uint8))
    slot = SlotSpec(
        name="s",
        variant="scene",
        aspect="1:1",
        long_side=1200,
        min_side=300,
        fit="cover",
        max_bytes=120_000,
    )
    data, image = encode_for_slot(noisy, slot)
    assert len(data) <= 120_000 and image.width < 1200
    assert all(r.passed for r in check_image(data, slot))


def test_impossible_byte_budget_is_a_render_error():
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (800, 800, 3), np.uint8))
    slot = SlotSpec(name="s", variant="scene", width=800, height=800, fit="cover", max_bytes=2_000)
    with pytest.raises(RenderError, match="cannot fit"):
        encode_for_slot(noisy, slot)


def test_check_reports_each_failing_rule_with_its_measurement():
    image = Image.new("RGB", (900, 700), (250, 250, 250))
    image.paste((0, 0, 0), (0, 0, 50, 50))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    results = {r.rule: r for r in check_image(buffer.getvalue(), WHITE)}
    assert not results["format"].passed and results["format"].measured == "PNG"
    assert not results["size"].passed and results["size"].measured == "900x700"
    assert not results["colour_space"].passed
    assert not results["white_background"].passed
    assert not results["product_fill"].passed
