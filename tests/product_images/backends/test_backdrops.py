import numpy as np
import pytest
from PIL import Image

from product_images.backends.backdrops import backdrop_urls, best_backdrop
from product_images.imaging.scenes.stage import tone_of


def _tone(colour):
    return tone_of(np.full((2, 2, 3), colour, np.uint8), np.full((2, 2), 255, np.uint8))


@pytest.fixture
def folder(tmp_path):
    Image.new("RGB", (300, 200), (235, 232, 225)).save(tmp_path / "linen.jpg")
    Image.new("RGB", (300, 200), (40, 38, 36)).save(tmp_path / "slate.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    return tmp_path


def test_a_folder_lists_its_photos_a_file_itself(folder):
    assert [p.rsplit("/", 1)[1] for p in backdrop_urls(str(folder))] == ["linen.jpg", "slate.png"]
    assert backdrop_urls(str(folder / "linen.jpg")) == (str(folder / "linen.jpg"),)
    assert backdrop_urls("s3://bucket/backdrop.jpg") == ("s3://bucket/backdrop.jpg",)


@pytest.mark.parametrize(
    ("colour", "expected"), [((20, 20, 25), "linen.jpg"), ((245, 245, 240), "slate.png")]
)
def test_each_product_gets_the_photo_that_shows_it_best(folder, colour, expected):
    image, name = best_backdrop(str(folder), _tone(colour))
    assert name == expected and image.size == (300, 200)


def test_an_empty_folder_means_a_drawn_surface(tmp_path):
    assert best_backdrop(str(tmp_path), _tone((20, 20, 20))) is None
