"""Reading a full-resolution photo through a small analysis copy of it.

The cut-out is decided on a small copy, but only the pixels along its outline need the full
resolution. These helpers map between the two grids without touching the rest of a large
photo: the full-resolution pixels under some analysis pixels, bilinear samples of analysis
maps at full-resolution points, and local mean colours (normalised convolution).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["Points", "local_mean", "pixels_under", "sample", "sample_points"]

_ROW = 1024  # remap() wants maps under 32767 px a side: points go in rows of this many

Points = tuple[np.ndarray, np.ndarray, int]  # remap() x map, y map, number of points


def pixels_under(cells: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the full-resolution (`shape`) pixels that fall in the True cells
    of a smaller grid covering the same picture: cost grows with the cells, not the photo."""
    h, w = cells.shape
    rows = np.ceil(np.arange(h + 1) * (shape[0] / h)).astype(np.int64)
    cols = np.ceil(np.arange(w + 1) * (shape[1] / w)).astype(np.int64)
    cy, cx = np.nonzero(cells)
    top, left = rows[cy], cols[cx]
    height, width = rows[cy + 1] - top, cols[cx + 1] - left
    if len(cy) == 0:
        return cy, cx
    dy = np.arange(int(height.max()))[None, :, None]
    dx = np.arange(int(width.max()))[None, None, :]
    inside = (dy < height[:, None, None]) & (dx < width[:, None, None])
    ys = np.broadcast_to(top[:, None, None] + dy, inside.shape)[inside]
    xs = np.broadcast_to(left[:, None, None] + dx, inside.shape)[inside]
    return ys, xs


def sample_points(
    ys: np.ndarray, xs: np.ndarray, full: tuple[int, ...], small: tuple[int, ...]
) -> Points:
    """remap() coordinates, on a `small` grid, of the centres of full-resolution pixels."""
    count = len(ys)
    rows = max(1, -(-count // _ROW))
    map_x = np.zeros(rows * _ROW, np.float32)
    map_y = np.zeros(rows * _ROW, np.float32)
    map_x[:count] = (xs.astype(np.float32) + 0.5) * (small[1] / full[1]) - 0.5
    map_y[:count] = (ys.astype(np.float32) + 0.5) * (small[0] / full[0]) - 0.5
    return map_x.reshape(rows, _ROW), map_y.reshape(rows, _ROW), count


def sample(image: np.ndarray, points: Points) -> np.ndarray:
    """Bilinear samples of `image` (H x W or H x W x C) at the points, one row per point."""
    map_x, map_y, count = points
    values = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return values.reshape(map_x.size, -1)[:count]


def local_mean(image: np.ndarray, where: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian-weighted mean colour of the `where` pixels near each pixel, and the weight
    it rests on (near 0: no such pixel within a few sigma)."""
    weight = where.astype(np.float32)
    total = cv2.GaussianBlur(weight, (0, 0), sigma)
    summed = cv2.GaussianBlur(image.astype(np.float32) * weight[..., None], (0, 0), sigma)
    return (summed / np.maximum(total, 1e-6)[..., None]).astype(np.float32), total
