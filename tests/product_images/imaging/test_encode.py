import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from product_images.imaging.encode import SRGB_ICC, SharedEncodings, encode_for_slot
from product_images.imaging.provenance import ai_provenance_xmp
from product_images.specs import SlotSpec
from product_images.testing.fixtures.images import draw_product

SLOT = SlotSpec(name="s", variant="scene", width=400, height=300, fit="cover", quality=88)


def _photo():
    return draw_product(size=(400, 300))[0]


def test_an_image_that_fits_is_encoded_once_at_the_slot_quality_with_420_chroma():
    image = _photo()
    data, encoded = encode_for_slot(image, SLOT)
    reference = io.BytesIO()
    image.save(reference, "JPEG", quality=88, subsampling="4:2:0", icc_profile=SRGB_ICC)
    assert data == reference.getvalue() and encoded is image
    decoded = Image.open(io.BytesIO(data))
    assert JpegImagePlugin.get_sampling(decoded) == 2  # 4:2:0
    assert decoded.info["icc_profile"] == SRGB_ICC


def test_over_budget_searches_down_to_the_highest_quality_that_fits():
    image = _photo()
    sizes = {}
    for quality in range(60, 89):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, subsampling="4:2:0", icc_profile=SRGB_ICC)
        sizes[quality] = len(buffer.getvalue())
    budget = (sizes[70] + sizes[71]) // 2
    slot = SLOT.model_copy(update={"max_bytes": budget})
    data, _ = encode_for_slot(image, slot)
    assert len(data) == sizes[70]


@pytest.mark.parametrize(
    ("other", "shared"),
    [
        ({}, True),
        ({"name": "other", "max_side": 5000}, True),
        ({"quality": 80}, False),
        ({"embed_icc": False}, False),
        ({"max_bytes": 10_000}, False),  # 12 kB at quality 88: searched down
    ],
)
def test_shared_encodings_encode_an_image_once_per_encoding_rules(other, shared):
    image, encodings = _photo(), SharedEncodings()
    first, _ = encodings.encode(image, SLOT)
    second, _ = encodings.encode(image, SLOT.model_copy(update=other))
    assert (second is first) == shared
    if not shared:
        assert second != first


def test_shared_encodings_tell_images_and_provenance_apart():
    encodings = SharedEncodings()
    image, twin = _photo(), _photo()
    first, _ = encodings.encode(image, SLOT)
    assert encodings.encode(twin, SLOT)[0] is not first
    tagged, _ = encodings.encode(image, SLOT, ai_provenance_xmp("gemini-3.1-flash-image"))
    assert tagged != first and b"trainedAlgorithmicMedia" in tagged


def test_shared_encodings_give_what_encode_for_slot_gives():
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8))
    slot = SLOT.model_copy(update={"max_bytes": 60_000, "min_quality": 10})
    assert SharedEncodings().encode(noisy, slot)[0] == encode_for_slot(noisy, slot)[0]


def test_the_srgb_profile_carries_a_fixed_date_not_the_time_it_was_made():
    from PIL import ImageCms

    from product_images.imaging.encode import ICC_DATE, stamp_icc_date

    made = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    other_day = made[:24] + bytes.fromhex("07d0000200030004000500") + b"\x06" + made[36:]
    assert stamp_icc_date(made) == stamp_icc_date(other_day) == SRGB_ICC
    assert SRGB_ICC[24:36] == ICC_DATE
    profile = ImageCms.ImageCmsProfile(io.BytesIO(SRGB_ICC))
    assert "sRGB" in ImageCms.getProfileDescription(profile)


_ENCODE_IN_CHILD = """
import sys
from product_images.imaging.encode import encode_for_slot
from product_images.imaging.provenance import ai_provenance_xmp
from product_images.specs import SlotSpec
from product_images.testing.fixtures.images import draw_product
slot = SlotSpec.model_validate_json(sys.argv[1])
data, _ = encode_for_slot(draw_product(size=(400, 300))[0], slot, ai_provenance_xmp("gemini-3"))
sys.stdout.buffer.write(data)
"""


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_identical_pixels_and_rules_give_identical_bytes_in_another_process(fmt):
    # The child builds its own profile and XMP seconds later: any clock in them would show.
    import subprocess
    import sys

    slot = SLOT.model_copy(update={"format": fmt, "embed_icc": True})
    here, _ = encode_for_slot(_photo(), slot, ai_provenance_xmp("gemini-3"))
    child = subprocess.run(
        [sys.executable, "-c", _ENCODE_IN_CHILD, slot.model_dump_json()],
        capture_output=True,
        check=True,
    )
    assert child.stdout == here
