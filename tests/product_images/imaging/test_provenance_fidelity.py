import cv2
import numpy as np
import pytest
from PIL import Image

from product_images.imaging.compose import compose_scene, compose_white
from product_images.imaging.encode import encode_for_slot
from product_images.imaging.fidelity import product_similarity
from product_images.imaging.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    ai_provenance_xmp,
    digital_source_type,
)
from product_images.specs import SlotSpec
from product_images.testing.fixtures.images import draw_product


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize(
    "term", [TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA]
)
def test_outputs_declare_their_digital_source_type(fmt, term):
    slot = SlotSpec(name="s", variant="scene", width=64, height=64, fit="cover", format=fmt)
    image = Image.new("RGB", (64, 64), (10, 20, 30))
    tagged, _ = encode_for_slot(image, slot, ai_provenance_xmp("gemini-3-pro-image", term))
    plain, _ = encode_for_slot(image, slot)
    assert digital_source_type(tagged) == term
    assert digital_source_type(plain) is None


def _source():
    image, truth = draw_product(size=(800, 600))
    ys, xs = np.nonzero(truth)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return np.asarray(image), truth.astype(np.uint8) * 255, box


def test_the_same_product_on_white_is_similar_and_another_is_not():
    rgb, alpha, box = _source()
    same = compose_white(rgb, alpha, box, 512, 0.85).image
    other = np.asarray(draw_product(size=(800, 600), colour=(30, 160, 60))[0])
    different = compose_white(other, alpha, box, 512, 0.85).image
    circle = np.full((512, 512, 3), 255, np.uint8)
    cv2.circle(circle, (256, 256), 150, (180, 40, 40), -1)
    assert product_similarity(rgb, alpha, box, same, "white") > 0.8
    assert product_similarity(rgb, alpha, box, different, "white") < 0.3
    assert product_similarity(rgb, alpha, box, Image.fromarray(circle), "white") < 0.5


@pytest.mark.parametrize("variant", ["scene", "detail"])
def test_scenes_and_details_are_compared_by_colour(variant):
    rgb, alpha, box = _source()
    other = np.asarray(draw_product(size=(800, 600), colour=(30, 160, 60))[0])
    if variant == "scene":
        same = compose_scene(rgb, alpha, box, 512).image
        drifted = compose_scene(other, alpha, box, 512).image
    else:
        same, drifted = (
            Image.fromarray(rgb[200:400, 300:500]),
            Image.fromarray(other[200:400, 300:500]),
        )
    assert product_similarity(rgb, alpha, box, same, variant) > 0.5
    assert product_similarity(rgb, alpha, box, drifted, variant) < 0.3
