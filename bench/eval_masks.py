"""Score the local cut-out against reference masks: IoU, boundary F (2 px) and the mean alpha
error on the edge band, per image and per background type.

References: the transparent cut-outs in ../shared/testdata/products (object = alpha >= 128;
their soft shadow is not the object), composited by this script over plain, gradient, white and
textured backgrounds it draws itself.

    .venv/bin/python bench/eval_masks.py [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from product_images.imaging.segment import segment_product

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products"
SIDE = 1000  # composites are evaluated at this size (the cut-outs are 2160 px)


def _backgrounds(side: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    y = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    gradient = np.array([235, 228, 215]) * (1 - y) + np.array([170, 180, 200]) * y
    noise = cv2.GaussianBlur(rng.normal(0, 1, (side, side)).astype(np.float32), (0, 0), 3)
    wood = 150 + 40 * np.sin(np.linspace(0, 60, side))[None, :] + 25 * noise
    textured = np.stack([wood, wood * 0.8, wood * 0.6], axis=2)
    return {
        "white": np.full((side, side, 3), 255.0),
        "plain": np.full((side, side, 3), (228.0, 226.0, 222.0)),
        "gradient": np.broadcast_to(gradient, (side, side, 3)).copy(),
        "textured": np.clip(textured, 0, 255),
    }


def _composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255
    out = rgba[..., :3].astype(np.float32) * alpha + background * (1 - alpha)
    return np.clip(out, 0, 255).astype(np.uint8)


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)


def _boundary_f(ours: np.ndarray, ref: np.ndarray, tolerance: int = 2) -> float:
    kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    b_ours, b_ref = _boundary(ours), _boundary(ref)
    near_ref = cv2.dilate(b_ref.astype(np.uint8), kernel).astype(bool)
    near_ours = cv2.dilate(b_ours.astype(np.uint8), kernel).astype(bool)
    precision = (b_ours & near_ref).sum() / max(1, b_ours.sum())
    recall = (b_ref & near_ours).sum() / max(1, b_ref.sum())
    return float(2 * precision * recall / max(1e-9, precision + recall))


def _scores(alpha: np.ndarray, ref_alpha: np.ndarray) -> tuple[float, float, float]:
    ours, ref = alpha >= 128, ref_alpha >= 128
    iou = float((ours & ref).sum() / max(1, (ours | ref).sum()))
    band = cv2.dilate(_boundary(ref).astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
    object_alpha = np.where(ref, ref_alpha, 0).astype(np.float32)  # the shadow is not the object
    mae = float(np.abs(alpha.astype(np.float32) - object_alpha)[band].mean() / 255)
    return iou, _boundary_f(ours, ref), mae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    args = parser.parse_args()
    backgrounds = _backgrounds(SIDE)
    rows, by_kind = [], defaultdict(list)
    for mask_path in sorted((args.data / "masks").glob("*_alpha.png")):
        stem = mask_path.name.removesuffix("_alpha.png")
        image = Image.open(args.data / "images" / f"{stem}.png").convert("RGBA")
        rgba = np.asarray(image.resize((SIDE, SIDE), Image.Resampling.LANCZOS))
        ref_alpha = np.asarray(Image.open(mask_path).convert("L").resize((SIDE, SIDE)))
        for kind, background in backgrounds.items():
            cut = segment_product(Image.fromarray(_composite(rgba, background)))
            iou, bf, mae = _scores(cut.alpha, ref_alpha)
            flagged = cut.confidence < 0.6
            rows.append((stem, kind, iou, bf, mae, cut.confidence, flagged))
            by_kind[kind].append((iou, bf, mae, flagged))
    head = ("image", "background", "IoU", "bF@2", "edgeMAE", "conf")
    print("{:36s} {:10s} {:>6s} {:>6s} {:>8s} {:>5s} review".format(*head))
    for stem, kind, iou, bf, mae, conf, flagged in rows:
        mark = "yes" if flagged else ""
        print(f"{stem:36s} {kind:10s} {iou:6.3f} {bf:6.3f} {mae:8.3f} {conf:5.2f} {mark}")
    print(f"\n{'background':10s} {'IoU':>6s} {'bF@2':>6s} {'edgeMAE':>8s} flagged  (means)")
    for kind, values in by_kind.items():
        iou, bf, mae, flagged = zip(*values, strict=True)
        print(
            f"{kind:10s} {statistics.mean(iou):6.3f} {statistics.mean(bf):6.3f} "
            f"{statistics.mean(mae):8.3f} {sum(flagged)}/{len(flagged)}"
        )
    bad = [r for r in rows if r[2] < 0.80 and not r[6]]
    print(f"\nunflagged masks below IoU 0.80: {len(bad)}")


if __name__ == "__main__":
    main()
