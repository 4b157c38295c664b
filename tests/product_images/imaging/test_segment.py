import numpy as np
import pytest

from product_images.imaging.segment import cutout_from_alpha, segment_product
from product_images.testing.fixtures.images import draw_product


def _iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    mask = alpha >= 128
    return float((mask & truth).sum() / (mask | truth).sum())


@pytest.mark.parametrize(
    ("background", "colour"),
    [
        ((255, 255, 255), (180, 40, 40)),
        ((235, 235, 232), (30, 60, 160)),
        ((40, 40, 45), (230, 200, 60)),
    ],
)
def test_plain_background_cutout_matches_the_drawn_mask(background, colour):
    image, truth = draw_product(background=background, colour=colour)
    cut = segment_product(image)
    assert _iou(cut.alpha, truth) >= 0.95
    assert cut.confidence >= 0.8
    assert cut.reasons == ()


def test_box_encloses_the_product():
    image, _truth = draw_product(box=(100, 80, 500, 400))
    left, top, right, bottom = segment_product(image).box
    assert abs(left - 100) <= 6 and abs(top - 80) <= 6
    assert abs(right - 500) <= 6 and abs(bottom - 400) <= 6


def test_product_touching_the_frame_is_flagged():
    image, _ = draw_product(size=(600, 600), box=(0, 100, 600, 500))
    cut = segment_product(image)
    assert cut.reasons
    assert cut.confidence < 0.6


def test_noisy_background_lowers_confidence():
    image, _ = draw_product()
    pixels = np.asarray(image).astype(np.int16)
    noise = np.random.default_rng(1).integers(-70, 70, pixels.shape)
    cluttered = np.clip(pixels + noise, 0, 255).astype(np.uint8)
    from PIL import Image

    cut = segment_product(Image.fromarray(cluttered))
    assert cut.confidence < 0.6
    assert cut.reasons


def test_blank_photo_has_no_product():
    from PIL import Image

    cut = segment_product(Image.new("RGB", (400, 300), (250, 250, 250)))
    assert cut.confidence == 0.0
    assert "no product found" in cut.reasons


def test_alpha_cutout_is_trusted_as_is():
    alpha = np.zeros((50, 80), np.uint8)
    alpha[10:40, 20:60] = 255
    cut = cutout_from_alpha(alpha)
    assert cut.box == (20, 10, 60, 40)
    assert cut.confidence > 0.9


def test_white_part_outlined_on_white_is_flagged():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (800, 600), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((120, 200, 330, 420), fill=(200, 40, 40))
    for offset in range(0, 200, 12):  # a white box, visible only through thin grey lines
        draw.line((400 + offset, 150, 400 + offset, 450), fill=(150, 150, 150), width=1)
    cut = segment_product(image)
    assert cut.confidence < 0.6
    assert any("edges lie outside" in r for r in cut.reasons)


def test_baked_in_drop_shadow_is_not_part_of_the_alpha_cutout():
    alpha = np.zeros((100, 100), np.uint8)
    alpha[20:60, 30:70] = 255
    alpha[70:80, 20:80] = 60  # a soft shadow under the object
    cut = cutout_from_alpha(alpha)
    assert cut.alpha[75, 50] == 0
    assert cut.box == (30, 20, 70, 60)
