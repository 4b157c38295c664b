"""The length of colour differences (the last axis: three channels), fast and exact.

`np.linalg.norm(delta, axis=-1)` squares, then sums along an axis of three with numpy's
generic reduction, whose per-row overhead dominates for millions of pixels. Spelling the
three squares out does the same float operations in the same order ((x0² + x1²) + x2²,
then the square root), so the result is bit-for-bit the same, about 4x faster
(tests/product_images/imaging/test_colour_distance.py holds it to that).
"""

from __future__ import annotations

import numpy as np

__all__ = ["colour_distance"]


def colour_distance(delta: np.ndarray) -> np.ndarray:
    """Euclidean length along the last axis (of size 3) of `delta`."""
    x0, x1, x2 = delta[..., 0], delta[..., 1], delta[..., 2]
    return np.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
