"""Neural segmenters as data: a spec file per model (weight file, checksum, the registry package
that carries it, licence, how to feed it), its weight file in a models folder, and the
onnxruntime session that runs it."""

from product_images.segmenters.catalogue import (
    builtin_dir,
    load_segmenter_file,
    load_segmenter_specs,
)
from product_images.segmenters.files import FileState, fetch_model, file_state, verified_path
from product_images.segmenters.onnx import NeuralSegmenter, open_segmenter
from product_images.segmenters.resolve import CLASSICAL, find_segmenter, missing_model_hint
from product_images.segmenters.spec import SegmenterSpec

__all__ = [
    "CLASSICAL",
    "FileState",
    "NeuralSegmenter",
    "SegmenterSpec",
    "builtin_dir",
    "fetch_model",
    "file_state",
    "find_segmenter",
    "load_segmenter_file",
    "load_segmenter_specs",
    "missing_model_hint",
    "open_segmenter",
    "verified_path",
]
