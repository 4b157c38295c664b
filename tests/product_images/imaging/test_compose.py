from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from product_images.imaging.compose import compose_scene, compose_white, crop_detail, decontaminate
from product_images.testing.fixtures.images import draw_product, ssim

GOLDEN = Path(__file__).parent / "golden"


def _product(background=(235, 235, 232)):
    image, truth = draw_product(background=background)
    alpha = truth.astype(np.uint8) * 255
    ys, xs = np.nonzero(truth)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return np.asarray(image), alpha, box


def test_white_master_background_is_exactly_white_and_product_centred():
    rgb, alpha, box = _product()
    master = compose_white(rgb, alpha, box, side=512, fill=0.85)
    pixels = np.asarray(master.image)
    left, top, right, bottom = master.product_box
    outside = np.ones(pixels.shape[:2], bool)
    outside[top:bottom, left:right] = False
    assert (pixels[outside] == 255).all()
    assert max(right - left, bottom - top) == round(512 * 0.85)
    assert abs((left + right) / 2 - 256) <= 1 and abs((top + bottom) / 2 - 256) <= 1


def test_decontamination_removes_the_old_background_from_edges():
    rgb = np.full((1, 3, 3), (100, 100, 100), np.uint8)
    rgb[0, 1] = (150, 50, 50)  # half red product (200,0,0) over grey (100,100,100)
    alpha = np.array([[255, 128, 0]], np.uint8)
    out = decontaminate(rgb, alpha, (100, 100, 100))
    assert tuple(out[0, 1]) == pytest.approx((199, 0, 0), abs=3)


@pytest.mark.parametrize("reflection", [False, True])
def test_scene_master_places_product_on_the_floor(reflection):
    rgb, alpha, box = _product()
    master = compose_scene(rgb, alpha, box, side=512, reflection=reflection)
    _left, _top, _right, bottom = master.product_box
    assert master.image.size == (512, 512)
    assert bottom > 512 * 0.62  # stands below the horizon
    corner = np.asarray(master.image)[5, 5]
    assert corner.min() > 150  # a light studio wall, not black


def test_scene_master_with_supplied_background():
    rgb, alpha, box = _product()
    backdrop = Image.new("RGB", (900, 600), (20, 120, 40))
    master = compose_scene(rgb, alpha, box, side=256, background=backdrop)
    assert tuple(np.asarray(master.image)[3, 3]) == (20, 120, 40)


def test_detail_crop_lies_inside_the_product():
    rgb, alpha, box = _product(background=(255, 255, 255))
    master = crop_detail(rgb, alpha, box, side=256)
    pixels = np.asarray(master.image).astype(int)
    assert master.confidence == 1.0
    assert (pixels.sum(axis=2) < 700).mean() > 0.95  # product, not white background
    assert len(master.alternates) >= 1  # at least two ranked candidates


@pytest.mark.parametrize(
    ("source", "side"), [((800, 600), 2048), ((3000, 2400), 2048), ((3000, 2400), 300)]
)
def test_detail_keeps_the_sources_own_pixels(source, side):
    image, truth = draw_product(size=source, background=(255, 255, 255))
    ys, xs = np.nonzero(truth)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    master = crop_detail(np.asarray(image), truth.astype(np.uint8) * 255, box, side=side)
    native = int(master.notes[0].split(" px")[0].rsplit(" ", 1)[1])
    # Native pixels when they are enough (>= 800 px), never above `side`, enlarged only from
    # a small source (and then it says so).
    assert master.image.width == min(side, max(native, 800))
    assert any("enlarged" in note for note in master.notes) == (native < min(side, 800))


def _golden(name: str, image: Image.Image) -> None:
    path = GOLDEN / name
    if not path.exists():  # first run writes the reference; review it, then commit it
        GOLDEN.mkdir(exist_ok=True)
        image.save(path)
    assert ssim(image, Image.open(path)) > 0.98


def test_white_master_golden():
    rgb, alpha, box = _product()
    _golden("white_master.png", compose_white(rgb, alpha, box, side=256, fill=0.85).image)


# scene goldens, one per surface: tests/product_images/imaging/scenes/test_scenes.py
