from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from product_images.errors import SpecError
from product_images.imaging.compose import compose_scene
from product_images.imaging.scenes import (
    SURFACES,
    ScenePlan,
    choose_look,
    draw_look,
    looks,
    photo,
    suitability,
)
from product_images.imaging.scenes.base import floor_coordinates
from product_images.imaging.scenes.sizes import load_sizes, real_size_cm
from product_images.imaging.scenes.stage import stage_product, tone_of
from product_images.testing.fixtures.images import draw_product, ssim

GOLDEN = Path(__file__).parent.parent / "golden"


def _product(colour=(180, 40, 40)):
    image, truth = draw_product(colour=colour, background=(235, 235, 232))
    alpha = truth.astype(np.uint8) * 255
    ys, xs = np.nonzero(truth)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return np.asarray(image), alpha, box


def _plan(cm_per_px=0.05, light=50.0, side=256):
    return ScenePlan(side, round(0.84 * side), cm_per_px, light, (50.0, 0.0, 0.0), 3)


@pytest.mark.parametrize(("surface", "palette"), looks())
def test_every_surface_draws_a_lit_backdrop(surface, palette):
    backdrop = draw_look(_plan(), surface, palette)
    image = backdrop.image
    assert image.shape == (256, 256, 3) and np.isfinite(image).all()
    assert image.min() >= 0 and image.max() <= 255
    assert backdrop.kind == "studio" and palette in backdrop.name
    grey = image.mean(axis=2)
    assert grey[:, :64].mean() > grey[:, -64:].mean()  # lit from the left: shadows fall right


def test_floor_is_in_perspective_at_the_products_scale():
    plan = _plan(cm_per_px=0.05)
    x, z = floor_coordinates(plan, np.array([plan.floor_y, plan.side - 1]), plan.side)
    assert z[0, 0] == pytest.approx(0, abs=1e-3)  # the product stands at depth 0
    assert x[0, 1] - x[0, 0] == pytest.approx(0.05, rel=1e-3)  # its row: cm_per_px
    assert z[1, 0] < 0 and x[1, 1] - x[1, 0] < 0.05  # nearer rows: in front, finer


def test_small_products_get_the_wall_farther_up_than_big_ones():
    # A close-up of a ring shows more table in front of the same wall than a shot of a chair.
    assert _plan(cm_per_px=0.005).wall_y() < _plan(cm_per_px=0.5).wall_y()


@pytest.mark.parametrize(
    ("colour", "light_floor"),
    [((25, 25, 30), True), ((60, 40, 120), True), ((245, 245, 240), False)],
)
def test_chosen_surface_contrasts_with_the_product(colour, light_floor):
    rgb = np.full((4, 4, 3), colour, np.uint8)
    tone = tone_of(rgb, np.full((4, 4), 255, np.uint8))
    for seed in range(6):
        surface, palette = choose_look(tone, seed)
        floor = SURFACES[surface].PALETTES[palette]
        floor = floor if isinstance(floor[0], int) else floor[0]
        assert (np.mean(floor) > 150) == light_floor, (surface, palette)
        assert suitability(tone, floor) > 25


def test_choice_is_stable_per_product_and_varies_across_products():
    tone = tone_of(np.full((2, 2, 3), (40, 60, 90), np.uint8), np.full((2, 2), 255, np.uint8))
    assert choose_look(tone, 5) == choose_look(tone, 5)
    assert len({choose_look(tone, seed) for seed in range(20)}) >= 2


def _floor_darkness(image, box, side):
    """Mean grey just above the floor line beside the product: (left, right)."""
    grey = np.asarray(image, np.float32).mean(axis=2)
    rows = slice(box[3] - 12, box[3] - 2)
    width = box[2] - box[0]
    left = grey[rows, max(0, box[0] - width // 3) : box[0] - 2].mean()
    right = grey[rows, box[2] + 2 : min(side, box[2] + width // 3)].mean()
    return left, right


def test_an_evenly_lit_photo_casts_shadows_straight_back():
    plain = Image.new("RGB", (256, 256), (200, 200, 200))
    assert photo.draw(plain, 256, "plain.jpg").light == 90.0


@pytest.mark.parametrize(
    ("brighter", "light", "darker"), [("left", 60.0, "right"), ("right", 120.0, "left")]
)
def test_shadow_falls_away_from_the_backdrops_light(brighter, light, darker):
    side = 256
    mask = np.full((100, 60), 255, np.uint8)
    product = np.full((100, 60, 3), 120, np.uint8)
    ramp = np.linspace(230, 170, side) if brighter == "left" else np.linspace(170, 230, side)
    lit = Image.fromarray(np.repeat(np.repeat(ramp[None, :, None], side, 0), 3, 2).astype(np.uint8))
    staged = stage_product(product, mask, side, 20.0, 0, lit, "ramp.jpg")
    assert staged.backdrop.kind == "photo" and staged.backdrop.light == light
    base = np.asarray(photo.draw(lit, side, "ramp.jpg").image, np.float32)
    shade = base - np.asarray(staged.image, np.float32)  # how much the shadow darkened
    left, right = _floor_darkness(255 - shade, staged.box, side)
    assert (right < left) == (darker == "right")


def test_scene_stands_the_product_on_the_floor_and_says_what_it_is():
    rgb, alpha, box = _product()
    master = compose_scene(rgb, alpha, box, side=256, size_cm=12)
    assert master.product_box[3] == round(0.84 * 256)
    assert master.notes[0].startswith("scene: studio shot on a drawn ")


def test_scene_on_a_backdrop_photo_is_named_for_it():
    rgb, alpha, box = _product()
    backdrop = Image.new("RGB", (900, 600), (20, 120, 40))
    master = compose_scene(rgb, alpha, box, 256, backdrop, background_name="garden.jpg")
    assert master.notes == ("scene: on the backdrop photo garden.jpg",)


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_scene_golden(surface, monkeypatch):
    from product_images.imaging.scenes import stage

    palette = next(iter(SURFACES[surface].PALETTES))
    monkeypatch.setattr(stage, "choose_look", lambda tone, seed: (surface, palette))
    rgb, alpha, box = _product()
    image = compose_scene(rgb, alpha, box, side=256, size_cm=15).image
    path = GOLDEN / f"scene_{surface}.png"
    if not path.exists():  # first run writes the reference; review it, then commit it
        image.save(path)
    assert ssim(image, Image.open(path)) > 0.98


@pytest.mark.parametrize(
    ("name", "category", "expected"),
    [("Stoneware mug, 350 ml", "Kitchen", 12), ("Thing", "Desk lamp", 45), ("Thing", "", 25)],
)
def test_real_size_from_name_then_category(name, category, expected):
    assert real_size_cm(name, category) == expected


def test_bad_size_table_names_the_file_and_field(tmp_path):
    path = tmp_path / "sizes.yaml"
    path.write_text("default: 25\nsizes:\n  mug: -3\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"^sizes\.yaml: sizes\.mug: "):
        load_sizes(path)
