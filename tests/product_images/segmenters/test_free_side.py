"""A model exported at one side, run at another: the real U²-Net-p file (exported at 320)
with its image dimensions freed in memory computes exactly what the file computes at 320, and
also runs at other sides."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from product_images.segmenters.free_side import free_image_side
from product_images.settings import Settings


@pytest.fixture(scope="module")
def exported() -> bytes:
    path = Settings().imaging.models_dir / "u2netp.onnx"
    assert path.exists(), "model file missing: run scripts/setup (product-images models fetch)"
    return path.read_bytes()


def _run(model: bytes, height: int, width: int) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    tensor = np.random.default_rng(7).random((1, 3, height, width), dtype=np.float32)
    return np.asarray(session.run(None, {session.get_inputs()[0].name: tensor})[0])


def test_the_exported_side_leaves_the_file_as_it_is(exported: bytes) -> None:
    assert free_image_side(exported, 320) is exported


def test_a_freed_model_computes_what_the_file_computes(exported: bytes) -> None:
    freed = free_image_side(exported, 192)
    assert len(freed) < len(exported)  # only shape declarations went; the weights stayed
    assert np.array_equal(_run(freed, 320, 320), _run(exported, 320, 320))


@pytest.mark.parametrize(("height", "width"), [(192, 192), (160, 160), (240, 320)])
def test_a_freed_model_runs_at_other_sides(exported: bytes, height: int, width: int) -> None:
    out = _run(free_image_side(exported, height), height, width)
    assert out.shape == (1, 1, height, width)
    assert np.isfinite(out).all() and 0.0 <= out.min() <= out.max() <= 1.0


def test_the_file_itself_refuses_other_sides(exported: bytes) -> None:
    """Why freeing is needed at all (if a future export is free, the tests say so)."""
    with pytest.raises(Exception, match="dimensions"):
        _run(exported, 192, 192)
