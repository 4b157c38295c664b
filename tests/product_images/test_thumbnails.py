import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from product_images.manifest import MasterRecord
from product_images.store import LocalStore
from product_images.thumbnails import THUMBNAIL_SIDE, ensure_thumbnail, thumbnail, thumbnail_key


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _master(store: LocalStore, data: bytes, variant: str = "white") -> MasterRecord:
    sha = hashlib.sha256(data).hexdigest()
    key = f"S-1/masters/{variant}.{sha[:12]}.png"
    store.put(key, data, "image/png")
    return MasterRecord(
        variant=variant,
        key=key,
        width=1,
        height=1,
        sha256=sha,
        backend="local",
        confidence=1.0,
        product_box=(0, 0, 1, 1),
    )


@pytest.mark.parametrize(
    ("size", "expected"),
    [((2048, 2048), (200, 200)), ((2000, 1000), (200, 100)), ((120, 90), (120, 90))],
)
def test_a_thumbnail_is_a_small_jpeg_of_the_whole_image(size, expected):
    rng = np.random.default_rng(3)
    noisy = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    data = thumbnail(_png(noisy))
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.format == "JPEG" and thumb.size == expected
        assert max(thumb.size) <= THUMBNAIL_SIDE
    assert len(data) < 40_000  # noise is the worst case for JPEG; real masters are smaller


def test_transparency_becomes_white():
    clear = Image.new("RGBA", (400, 400), (255, 0, 0, 0))
    clear.paste((10, 20, 30, 255), (100, 100, 300, 300))
    with Image.open(io.BytesIO(thumbnail(_png(clear)))) as thumb:
        rgb = np.asarray(thumb.convert("RGB")).astype(int)
    assert (rgb[2, 2] > 245).all() and (abs(rgb[100, 100] - (10, 20, 30)) < 12).all()


def test_a_thumbnail_is_made_once_per_master_content(tmp_path):
    store = LocalStore(tmp_path / "store")
    first = _master(store, _png(Image.new("RGB", (800, 800), (200, 10, 10))))
    key = ensure_thumbnail(store, "S-1", first)
    assert key == thumbnail_key("S-1", first) == f"_thumbs/S-1/white-{first.sha256[:12]}.jpg"
    store.put(key, b"already here", "image/jpeg")
    assert ensure_thumbnail(store, "S-1", first) == key
    assert store.get(key) == b"already here"  # reused, not made again
    second = _master(store, _png(Image.new("RGB", (800, 800), (10, 200, 10))))
    assert ensure_thumbnail(store, "S-1", second) != key  # new content, new thumbnail
