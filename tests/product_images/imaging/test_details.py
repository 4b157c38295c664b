import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from product_images.imaging.details import detail_candidates, find_marks
from product_images.testing.fixtures.images import draw_product


def _labelled(words=(("GOOD", (330, 250)), ("MORNING", (470, 420)))):
    """A product with words printed on it, and each word's box (source pixels)."""
    image, truth = draw_product(size=(1200, 900), colour=(40, 110, 120), box=(150, 120, 1050, 780))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=56)
    boxes = []
    for text, at in words:
        draw.text(at, text, fill=(245, 245, 240), font=font)
        boxes.append(draw.textbbox(at, text, font=font))
    ys, xs = np.nonzero(truth)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return np.asarray(image), truth.astype(np.uint8) * 255, box, boxes


def _cuts(window, word):
    inside = window[0] <= word[0] and window[1] <= word[1]
    inside &= window[2] >= word[2] and window[3] >= word[3]
    apart = (
        window[2] <= word[0] or word[2] <= window[0] or window[3] <= word[1] or word[3] <= window[1]
    )
    return not inside and not apart


@pytest.mark.parametrize("aspect", [1.0, 2 / 3, 4 / 5, 4 / 3])
def test_no_candidate_cuts_a_word_at_its_border(aspect):
    rgb, alpha, box, words = _labelled()
    found, confidence, _ = detail_candidates(rgb, alpha, box, count=3, aspect=aspect)
    assert len(found) >= 2 and confidence == 1.0
    for candidate in found:
        x0, y0, x1, y1 = candidate.box
        assert (x1 - x0) / (y1 - y0) == pytest.approx(aspect, rel=0.03)
        assert not any(_cuts(candidate.box, word) for word in words), candidate


def test_candidates_are_ranked_distinct_and_the_best_holds_the_print():
    rgb, alpha, box, _words = _labelled()
    found, _, _ = detail_candidates(rgb, alpha, box, count=3)
    scores = [c.score for c in found]
    assert scores == sorted(scores, reverse=True)
    assert found[0].marks >= 1  # the print, not a plain patch, comes first
    assert found[0].box != found[1].box


def test_marks_are_words_not_the_outline_or_a_stripe():
    grey = np.full((200, 300), 120, np.uint8)
    grey[100:103, 10:290] = 250  # a stripe across: may be cut
    image = Image.fromarray(grey)
    ImageDraw.Draw(image).text((60, 40), "LOGO", fill=250, font=ImageFont.load_default(size=30))
    marks = find_marks(np.asarray(image), np.ones((200, 300), bool))
    assert len(marks) == 1 and marks[0][1] >= 35 and marks[0][3] <= 80


def test_thin_product_gets_lower_confidence_and_a_reason():
    rgb = np.full((600, 600, 3), 255, np.uint8)
    alpha = np.zeros((600, 600), np.uint8)
    alpha[50:550, 270:330] = 255  # a pole: no window of a useful size fits on it
    rgb[alpha > 0] = (90, 60, 30)
    found, confidence, reason = detail_candidates(rgb, alpha, (270, 50, 330, 550))
    assert found and confidence < 1.0 and "on the product" in reason
    assert all(c.box[2] - c.box[0] >= 0.12 * 500 for c in found)  # no specks
