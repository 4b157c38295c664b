import numpy as np
import pytest

from product_images.imaging.colour_distance import colour_distance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 3), (40, 30, 3), (500, 2, 3)])
def test_it_is_numpys_norm_bit_for_bit(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    delta = ((rng.random(shape) - 0.5) * 300).astype(dtype)
    ours = colour_distance(delta)
    assert ours.dtype == dtype
    assert np.array_equal(ours, np.linalg.norm(delta, axis=-1))


def test_it_takes_strided_views():
    lab = np.arange(60, dtype=np.float32).reshape(4, 5, 3)
    delta = lab[:, None, :, :] - lab[None, :1, :1, :]  # broadcast, not contiguous per pixel
    assert np.array_equal(colour_distance(delta), np.linalg.norm(delta, axis=-1))
