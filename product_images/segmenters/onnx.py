"""A neural segmenter run by onnxruntime: photo in, foreground probability map out.

Sessions are heavy (weights, thread pools): one per model file, input side and thread count
per process, kept for the process's life. They hold no state between calls, so sharing one
cannot change a result.

A fully convolutional model exported at one side (U²-Net at 320) can be run at another: its
file fixes the input's height and width, so those two dimensions are declared free in memory
(free_side.py) before the session is made (the file, and its checksum, stay as they are).
The model's cost grows with the pixels it sees (u2netp: 0.43 s CPU at 320, 0.16 s at 192).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from product_images.segmenters.free_side import free_image_side
from product_images.segmenters.spec import ModelInput, ModelOutput, SegmenterSpec

__all__ = ["NeuralSegmenter", "open_segmenter"]

_RESIZE = {"lanczos": cv2.INTER_LANCZOS4, "bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


class NeuralSegmenter:
    """One loaded model; `probability` is safe to call from several threads."""

    def __init__(self, spec: SegmenterSpec, session: ort.InferenceSession) -> None:
        self.spec = spec
        self.name = spec.name
        self._session = session
        self._input = session.get_inputs()[0].name

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """Foreground probability (float32, 0-1) at the model's input size, for an RGB photo."""
        tensor = _prepare(rgb, self.spec.input)
        outputs = self._session.run(None, {self._input: tensor})
        raw = np.asarray(outputs[self.spec.output.index], dtype=np.float32)
        return _normalise(raw.reshape(raw.shape[-2:]), self.spec.output)


def open_segmenter(spec: SegmenterSpec, path: Path, threads: int = 1) -> NeuralSegmenter:
    """The model at `path` (already checked against its spec), loaded once per process."""
    return NeuralSegmenter(spec, _session(str(path), spec.input.size, threads))


@lru_cache(maxsize=4)
def _session(path: str, side: int, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # Products run side by side; a model that took every core would only make them queue.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # The memory pattern plans one block for every activation of a run and keeps it: 620 MB
    # peak for u2netp at 320 against 430 MB without it, for the same CPU time (the arena still
    # reuses its buffers). Pixel worker processes must stay under 500 MB.
    options.enable_mem_pattern = False
    available = ort.get_available_providers()
    gpu = [p for p in ("CUDAExecutionProvider",) if p in available]
    graph = free_image_side(Path(path).read_bytes(), side)
    return ort.InferenceSession(graph, options, providers=[*gpu, "CPUExecutionProvider"])


def _prepare(rgb: np.ndarray, spec: ModelInput) -> np.ndarray:
    size = (spec.size, spec.size)
    small = cv2.resize(rgb, size, interpolation=_RESIZE[spec.resize]).astype(np.float32)
    scale = max(float(small.max()), 1e-6) if spec.scale == "max" else float(spec.scale)
    small = (small / scale - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None], dtype=np.float32)


def _normalise(raw: np.ndarray, spec: ModelOutput) -> np.ndarray:
    if spec.normalise == "minmax":
        low, high = float(raw.min()), float(raw.max())
        return (raw - low) / max(high - low, 1e-6)
    if spec.normalise == "sigmoid":
        return 1.0 / (1.0 + np.exp(-raw))
    return np.clip(raw, 0.0, 1.0)
