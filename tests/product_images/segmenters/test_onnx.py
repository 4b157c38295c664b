"""The real U²-Net-p model through onnxruntime, on a drawn photo: its map is high on the
product and low on the background; one session serves every call in a process."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from product_images.segmenters import (
    NeuralSegmenter,
    builtin_dir,
    find_segmenter,
    missing_model_hint,
)
from product_images.settings import Settings
from product_images.testing.fixtures.images import draw_product


@pytest.fixture(scope="module")
def neural() -> NeuralSegmenter:
    settings = Settings()
    model = find_segmenter("u2netp", settings.imaging.models_dir)
    assert model is not None, "model file missing: run scripts/setup (product-images models fetch)"
    return model


def test_the_map_separates_a_drawn_product_from_its_background(neural: NeuralSegmenter) -> None:
    image, mask = draw_product(size=(800, 600))
    probability = neural.probability(np.asarray(image))
    assert probability.shape == (320, 320) and probability.dtype == np.float32
    full = cv2.resize(probability, (800, 600), interpolation=cv2.INTER_LINEAR)
    inside = cv2.erode(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    outside = ~cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    assert np.median(full[inside]) > 0.9
    assert np.median(full[outside]) < 0.05


def test_the_session_is_loaded_once_per_process(neural: NeuralSegmenter) -> None:
    again = find_segmenter("u2netp", Settings().imaging.models_dir)
    assert again is not None and again._session is neural._session


def test_classical_and_a_missing_file_mean_no_model(tmp_path: Path) -> None:
    assert find_segmenter("classical", tmp_path) is None
    assert find_segmenter("u2netp", tmp_path) is None
    hint = missing_model_hint("u2netp", tmp_path)
    assert hint is not None and "product-images models fetch u2netp" in hint
    assert missing_model_hint("u2netp", Settings().imaging.models_dir) is None


def test_a_users_own_export_runs_from_its_spec_alone(tmp_path: Path) -> None:
    """Another ONNX export needs only a spec file and its weights: no code."""
    settings = Settings()
    models, specs = tmp_path / "models", tmp_path / "specs"
    models.mkdir()
    specs.mkdir()
    (models / "mine.onnx").write_bytes((settings.imaging.models_dir / "u2netp.onnx").read_bytes())
    spec = (builtin_dir() / "u2netp.yaml").read_text()
    spec = spec.replace("file: u2netp.onnx", "file: mine.onnx").replace(
        "resize: lanczos", "resize: bilinear"
    )
    (specs / "my-export.yaml").write_text(spec)
    model = find_segmenter("my-export", models, specs)
    assert model is not None and model.name == "my-export"
    image, mask = draw_product(size=(640, 480))
    full = cv2.resize(model.probability(np.asarray(image)), (640, 480))
    assert ((full >= 0.5) == mask).mean() > 0.97
