from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from product_images.imaging.compose import compose_white, with_shadow
from product_images.imaging.floor_shadow import (
    _reach_region,
    apply_shadow,
    floor_layers,
    shadow_opacity,
)
from product_images.specs import ShadowSpec
from product_images.testing.fixtures.images import draw_product, ssim

GOLDEN = Path(__file__).parent / "golden"
CONTACT = ShadowSpec(contact=0.5, reach=0.05)
CAST = ShadowSpec(contact=0.5, cast=0.35, direction=65, length=0.55, softness=0.6, reach=0.07)
MIRROR = ShadowSpec(contact=0.4, reflection=0.3, reach=0.3)


def _white(side=512):
    image, truth = draw_product(background=(235, 235, 232))
    alpha = truth.astype(np.uint8) * 255
    ys, xs = np.nonzero(truth)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return compose_white(np.asarray(image), alpha, box, side=side, fill=0.85)


def _box(alpha):
    ys, xs = np.nonzero(alpha > 127)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("spec", [CONTACT, CAST, MIRROR])
def test_shadow_stays_within_reach_and_off_the_product(spec):
    master = _white()
    shaded = np.asarray(with_shadow(master, spec).image)
    plain = np.asarray(master.image)
    left, top, right, bottom = _box(master.alpha)
    limit = spec.reach * max(right - left, bottom - top)
    far = np.ones(plain.shape[:2], bool)
    far[
        max(0, int(top - limit)) : int(bottom + limit) + 1,
        max(0, int(left - limit)) : int(right + limit) + 1,
    ] = False
    assert (shaded[far] == 255).all()  # pure white beyond the reach: exactly 255
    solid = master.alpha == 255
    assert (shaded[solid] == plain[solid]).all()  # never drawn onto the product
    assert (shaded != plain).any()


def test_contact_shadow_is_darkest_just_under_the_base():
    master = _white()
    grey = np.asarray(with_shadow(master, CONTACT).image.convert("L")).astype(int)
    left, _top, right, bottom = _box(master.alpha)
    centre = (left + right) // 2
    column = grey[bottom : bottom + 20, centre]
    assert column[1] < 200 and column[1] < column[-1]  # dark at the floor line, fading out
    assert grey[bottom + 2, left - 15] > grey[bottom + 2, centre]  # fainter past the sides


@pytest.mark.parametrize(("direction", "side"), [(20, "right"), (160, "left")])
def test_cast_shadow_falls_away_from_the_light(direction, side):
    master = _white()
    spec = ShadowSpec(cast=0.6, direction=direction, length=0.8, reach=0.3)
    opacity = shadow_opacity(master.alpha, _box(master.alpha), spec)
    left, _top, right, _bottom = _box(master.alpha)
    mass = {"left": opacity[:, :left].sum(), "right": opacity[:, right:].sum()}
    other = "left" if side == "right" else "right"
    assert mass[side] > 5 * mass[other]


def test_softer_shadow_has_softer_edges_far_from_the_floor():
    alpha = np.zeros((400, 600), np.uint8)
    alpha[100:300, 40:100] = 255  # a post standing on the floor at y = 300
    box = (40, 100, 100, 300)
    far = 110  # right of the post: the shadow of its upper part

    def steepest(softness):
        spec = ShadowSpec(cast=0.6, direction=60, length=0.5, softness=softness, reach=0.5)
        opacity = shadow_opacity(alpha, box, spec)
        return np.abs(np.diff(opacity[:, far:], axis=1)).max()

    assert steepest(1.0) < 0.6 * steepest(0.0)


def test_shadow_on_a_coloured_floor_darkens_towards_the_shadow_colour():
    alpha = np.zeros((100, 100), np.uint8)
    alpha[20:80, 40:60] = 255
    floor = np.full((100, 100, 3), (200, 150, 100), np.uint8)
    out = apply_shadow(floor, alpha, (40, 20, 60, 80), CONTACT)
    assert (out[81, 50] < floor[81, 50]).all()


def test_master_without_a_mask_keeps_no_shadow_and_says_so():
    master = _white()
    bare = with_shadow(master.__class__(master.image, master.product_box, 1.0), CONTACT)
    assert bare.image is master.image and "shadow left out" in bare.notes[0]


@pytest.mark.parametrize(
    ("name", "spec"), [("white_contact.png", CONTACT), ("white_cast.png", CAST)]
)
def test_shadow_golden(name, spec):
    image = with_shadow(_white(256), spec).image
    path = GOLDEN / name
    if not path.exists():  # first run writes the reference; review it, then commit it
        image.save(path)
    assert ssim(image, Image.open(path)) > 0.98


def _whole_region(image, alpha, box, spec, colour=(38, 34, 30)):
    """apply_shadow computed on every pixel of the reach region: the reference the sparse
    version (only the pixels a layer reaches) must match exactly."""
    x0, y0, x1, y1 = _reach_region(image.shape, box, spec.reach)
    local = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
    part, part_alpha = image[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    opacity, reflection = floor_layers(part, part_alpha, local, spec)
    base = part.astype(np.float32)
    behind = (1.0 - part_alpha.astype(np.float32) / 255.0)[..., None]
    if reflection is not None:
        base = base + behind * reflection[..., 3:4] * (reflection[..., :3] - base)
    filtered = 1.0 - np.asarray(colour, np.float32) / 255.0
    shaded = base * (1.0 - behind * opacity[..., None] * filtered)
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(np.rint(shaded), 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize("spec", [CONTACT, CAST, MIRROR])
@pytest.mark.parametrize("floor", [(255, 255, 255), (120, 160, 90)])
def test_only_reached_pixels_are_computed_and_the_result_is_the_same(spec, floor):
    master = _white()
    image = np.asarray(master.image).copy()
    image[master.alpha == 0] = floor  # a coloured floor too: every pixel of it may change
    box = _box(master.alpha)
    assert np.array_equal(
        apply_shadow(image, master.alpha, box, spec), _whole_region(image, master.alpha, box, spec)
    )
