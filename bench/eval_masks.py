"""Score the cut-out against reference masks: IoU, boundary F (2 px), the mean alpha error
on the edge band and the edge error of the white master, per image and per background type;
then how well the confidence separates good masks (IoU >= 0.95) from bad ones (IoU < 0.90).

    .venv/bin/python bench/eval_masks.py [--neural u2netp|classical] [--data DIR]
        [--segmenter FILE.py] [--no-rows] [--only TEXT]

`--neural` picks the segmenter spec (default: the setting, u2netp); `classical` scores the
classical cut-out alone (what runs without the model file: the "before" of issue 11).

The evaluation set (252 images, built here, deterministic; needs the `bench` extra):
- References: the 4 transparent cut-outs in ../shared/testdata/products/masks (mug, sunglasses,
  juice bottle, slip-on shoe). The object is alpha >= 128; their soft drop shadow is composited
  too (real photos have shadows) but is not the object.
- Backgrounds, 3 variants per type: white (pure; with sensor noise; with a studio fall-off to
  the corners), plain (light grey; beige with noise; dark slate with noise), gradient
  (vertical; radial vignette; diagonal warm-to-cool), textured, drawn in code (wood grain;
  concrete; woven fabric), real: photographed surfaces from scikit-image's data (brick wall,
  grass, gravel), white-on-white (the products whitened, on the three white backgrounds),
  thin (a 3-5 px cable drawn from the product out into the frame, part of the truth, on the
  plain backgrounds).
- Layouts per cut-out and background: two single placements (object 45-75 % of the short
  side, random position) and one pair with the next cut-out side by side; frames of 1000x1000,
  1200x900 or 900x1200. Every other image goes through JPEG (quality 90), as uploads do.

`--segmenter` scores another implementation of `segment_product` (a .py file), e.g. the
version before the cut-out work:
    git show 67b6313:product_images/imaging/segment.py > /tmp/segment_before.py
    .venv/bin/python bench/eval_masks.py --segmenter /tmp/segment_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as skdata

from product_images.imaging.compose import decontaminate
from product_images.imaging.mask_quality import boundary, boundary_f, edge_alpha_error, iou
from product_images.imaging.segment import Cutout, segment_product
from product_images.preload import segmenter_of
from product_images.settings import Settings

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "products"
KINDS = ("white", "plain", "gradient", "textured", "real", "white-on-white", "thin")
FRAMES = ((1000, 1000), (1200, 900), (900, 1200))
GOOD_IOU = 0.95  # a mask this close needs no review
BAD_IOU = 0.90  # a mask this far off must be flagged

Segmenter = Callable[[Image.Image], Cutout]


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str
    image: np.ndarray  # RGB uint8
    truth: np.ndarray  # object alpha uint8 (shadow removed)
    truth_white: np.ndarray  # the object on pure white, as a perfect white master shows it


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    iou: float
    bf: float
    mae: float
    halo: float
    confidence: float
    seconds: float
    reasons: str


# --------------------------------------------------------------------------- backgrounds


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = rng.normal(0, 1, shape).astype(np.float32)
    blurred = cv2.GaussianBlur(field, (0, 0), sigma) if sigma > 0 else field
    return blurred / max(1e-6, float(blurred.std()))


def _radial(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((x - w / 2) / (w / 2), (y - h / 2) / (h / 2)) / np.sqrt(2)
    return r[..., None]


def _blend(a: tuple[float, ...], b: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


def _white(variant: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if variant == 0:
        return np.full((h, w, 3), 255.0, np.float32)
    if variant == 1:
        return 252 + 1.5 * rng.normal(0, 1, (h, w, 3)).astype(np.float32)
    return _blend((255, 255, 255), (236, 236, 238), _radial(h, w) ** 2)


def _plain(variant: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    colour = ((228, 226, 222), (226, 208, 184), (58, 62, 70))[variant]
    noise = 0.0 if variant == 0 else 2.0 * rng.normal(0, 1, (h, w, 3)).astype(np.float32)
    return np.asarray(colour, np.float32) + noise


def _gradient(variant: int, h: int, w: int, _rng: np.random.Generator) -> np.ndarray:
    if variant == 0:
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        return np.broadcast_to(_blend((235, 228, 215), (170, 180, 200), t), (h, w, 3)).copy()
    if variant == 1:
        return _blend((225, 232, 240), (150, 160, 175), _radial(h, w))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return _blend((250, 235, 220), (205, 215, 235), ((x / w + y / h) / 2)[..., None])


def _textured(variant: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if variant == 0:  # wood grain
        grain = 40 * np.sin(np.linspace(0, 60, w, dtype=np.float32))[None, :]
        wood = 150 + grain + 25 * _noise(rng, (h, w), 3)
        return np.stack([wood, wood * 0.8, wood * 0.6], axis=2)
    if variant == 1:  # concrete: noise at several scales
        grey = 150 + 14 * _noise(rng, (h, w), 12) + 10 * _noise(rng, (h, w), 3)
        grey += 8 * _noise(rng, (h, w), 0)
        return np.repeat(grey[..., None], 3, axis=2) * np.asarray((1.0, 0.98, 0.94), np.float32)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)  # woven fabric
    weave = 18 * np.sin(x / 2.2) * np.sin(y / 2.2) + 12 * np.sign(np.sin(x / 9) * np.sin(y / 9))
    cloth = weave + 8 * _noise(rng, (h, w), 1)
    return np.asarray((70, 95, 140), np.float32) + cloth[..., None]


def _real(variant: int, h: int, w: int, _rng: np.random.Generator) -> np.ndarray:
    """Photographed surfaces from scikit-image's data (brick wall, grass, gravel), tinted."""
    name, tint = (
        ("brick", (1.0, 0.72, 0.58)),
        ("grass", (0.72, 1.0, 0.55)),
        ("gravel", (1, 1, 1)),
    )[variant]
    grey = getattr(skdata, name)().astype(np.float32)
    scale = max(h / grey.shape[0], w / grey.shape[1])
    size = (max(w, round(grey.shape[1] * scale)), max(h, round(grey.shape[0] * scale)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_CUBIC)[:h, :w]
    return grey[..., None] * np.asarray(tint, np.float32)


BACKGROUNDS = {
    "white": _white,
    "plain": _plain,
    "gradient": _gradient,
    "textured": _textured,
    "real": _real,
    "white-on-white": _white,
    "thin": _plain,
}


def _whitened(layer: np.ndarray) -> np.ndarray:
    """The product in near-white (a white mug, a white shoe): its shading kept, its colour gone."""
    out = layer.copy()
    grey = out[..., :3].astype(np.float32).mean(axis=2, keepdims=True)
    out[..., :3] = np.clip(255 - (255 - grey) * 0.3, 0, 255).astype(np.uint8)
    return out


def _with_cable(layer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thin cable (3-5 px) from the product out into the frame, as a charger's or a strap."""
    out = layer.copy()
    ys, xs = np.nonzero(out[..., 3] >= 128)
    h, w = out.shape[:2]
    start = (int(xs.mean()), int(ys.max()) - 5)
    points = [start]
    for _ in range(3):
        x, y = points[-1]
        points.append((int(np.clip(x + rng.integers(-220, 220), 20, w - 20)),
                       int(np.clip(y + rng.integers(10, 120), 20, h - 20))))  # fmt: skip
    colour = (40, 40, 44, 255) if rng.random() < 0.5 else (235, 235, 235, 255)
    cable = np.zeros_like(out)
    cv2.polylines(cable, [np.asarray(points, np.int32)], False, colour, int(rng.integers(3, 6)),
                  cv2.LINE_AA)  # fmt: skip
    under = cable[..., 3:4].astype(np.float32) / 255 * (out[..., 3:4] < 128)
    out[..., :] = (out * (1 - under) + cable * under).astype(np.uint8)
    return out


_ADJUST = {"white-on-white": lambda layer, _rng: _whitened(layer), "thin": _with_cable}


# --------------------------------------------------------------------------- the set


def _load_cutouts(data: Path) -> dict[str, np.ndarray]:
    """Each reference cut-out cropped to its object and shadow, straight RGBA."""
    cutouts = {}
    for mask_path in sorted((data / "masks").glob("*_alpha.png")):
        stem = mask_path.name.removesuffix("_alpha.png")
        rgba = Image.open(data / "images" / f"{stem}.png").convert("RGBA")
        rgba.putalpha(Image.open(mask_path).convert("L"))
        cutouts[stem.split("_")[1]] = np.asarray(rgba.crop(rgba.getbbox()))
    return cutouts


def _scaled(rgba: np.ndarray, object_side: int, room: tuple[int, int]) -> np.ndarray:
    """The cut-out resized so its object's longer side is `object_side`, within room (w, h)."""
    ys, xs = np.nonzero(rgba[..., 3] >= 128)
    scale = object_side / max(np.ptp(ys) + 1, np.ptp(xs) + 1)
    scale = min(scale, room[0] / rgba.shape[1], room[1] / rgba.shape[0])
    size = (max(1, round(rgba.shape[1] * scale)), max(1, round(rgba.shape[0] * scale)))
    # Premultiplied resampling, so no dark fringe creeps into the edge.
    image = Image.fromarray(rgba, "RGBA").convert("RGBa").resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image.convert("RGBA"))


def _place(layer: np.ndarray, rgba: np.ndarray, left: int, top: int) -> None:
    h, w = rgba.shape[:2]
    layer[top : top + h, left : left + w] = rgba


def _layouts(
    cutouts: dict[str, np.ndarray], first: str, frame: tuple[int, int], rng: np.random.Generator
) -> Iterator[tuple[str, np.ndarray]]:
    """Two single placements and a pair, as full-frame RGBA layers."""
    w, h = frame
    margin = round(0.05 * min(w, h))
    for label in ("a", "b"):
        side = round(min(w, h) * rng.uniform(0.45, 0.75))
        rgba = _scaled(cutouts[first], side, (w - 2 * margin, h - 2 * margin))
        layer = np.zeros((h, w, 4), np.uint8)
        top = int(rng.integers(margin, h - margin - rgba.shape[0] + 1))
        left = int(rng.integers(margin, w - margin - rgba.shape[1] + 1))
        _place(layer, rgba, left, top)
        yield f"{first}-{label}", layer
    names = list(cutouts)
    second = names[(names.index(first) + 1) % len(names)]
    layer = np.zeros((h, w, 4), np.uint8)
    half = (w - 3 * margin) // 2
    for index, name in enumerate((first, second)):
        rgba = _scaled(cutouts[name], min(half, round(0.42 * h)), (half, h - 2 * margin))
        top = (h - rgba.shape[0]) // 2
        _place(layer, rgba, margin + index * (half + margin), top)
    yield f"{first}+{second}", layer


def _jpeg(rgb: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _sample(name: str, kind: str, layer: np.ndarray, background: np.ndarray, jpeg: bool) -> Sample:
    alpha = layer[..., 3:4].astype(np.float32) / 255
    rgb = layer[..., :3].astype(np.float32)
    image = np.clip(rgb * alpha + background * (1 - alpha), 0, 255).round().astype(np.uint8)
    truth = np.where(layer[..., 3] >= 128, layer[..., 3], 0).astype(np.uint8)
    t = truth[..., None].astype(np.float32) / 255
    white = np.clip(rgb * t + 255 * (1 - t), 0, 255).round().astype(np.uint8)
    return Sample(name, kind, _jpeg(image) if jpeg else image, truth, white)


def build_set(data: Path) -> list[Sample]:
    cutouts = _load_cutouts(data)
    samples = []
    for k, kind in enumerate(KINDS):
        for variant in range(3):
            for c, first in enumerate(cutouts):
                rng = np.random.default_rng(1000 * k + 100 * variant + c)
                frame = FRAMES[(variant + c) % len(FRAMES)]
                for name, layer in _layouts(cutouts, first, frame, rng):
                    if kind in _ADJUST:
                        layer = _ADJUST[kind](layer, rng)
                    background = BACKGROUNDS[kind](variant, frame[1], frame[0], rng)
                    jpeg = len(samples) % 2 == 1
                    samples.append(
                        _sample(f"{name}@{kind}{variant}", kind, layer, background, jpeg)
                    )
    return samples


# --------------------------------------------------------------------------- scoring


def white_master_edge_error(sample: Sample, cut: Cutout) -> float:
    """Mean |ours - truth| (0-255) within 3 px of the outline, both put on pure white."""
    clean = decontaminate(sample.image, cut.alpha, cut.background_rgb).astype(np.float32)
    a = cut.alpha[..., None].astype(np.float32) / 255
    ours = clean * a + 255 * (1 - a)
    band = cv2.dilate(boundary(sample.truth >= 128).astype(np.uint8), np.ones((7, 7), np.uint8))
    diff = np.abs(ours - sample.truth_white.astype(np.float32)).mean(axis=2)
    return float(diff[band.astype(bool)].mean())


def score(sample: Sample, segmenter: Segmenter) -> Row:
    start = time.perf_counter()
    cut = segmenter(Image.fromarray(sample.image))
    seconds = time.perf_counter() - start
    ours, truth = cut.alpha >= 128, sample.truth >= 128
    return Row(
        sample.name,
        sample.kind,
        iou(ours, truth),
        boundary_f(ours, truth),
        edge_alpha_error(cut.alpha, sample.truth),
        white_master_edge_error(sample, cut),
        cut.confidence,
        seconds,
        "; ".join(cut.reasons),
    )


def _load_segmenter(path: Path | None, settings: Settings) -> Segmenter:
    if path is None:
        neural = segmenter_of(settings)
        print(f"segmenter: {neural.name + '+classical' if neural else 'classical'}")
        return lambda image: segment_product(image, settings.imaging.working_side, neural)
    spec = importlib.util.spec_from_file_location("segmenter_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module.segment_product  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- reports


def print_rows(rows: list[Row], threshold: float) -> None:
    print(f"{'image':28s} {'IoU':>6s} {'bF@2':>6s} {'edgeMAE':>7s} {'halo':>5s} {'conf':>5s}")
    for r in rows:
        mark = "review" if r.confidence < threshold else ""
        print(
            f"{r.name:28s} {r.iou:6.3f} {r.bf:6.3f} {r.mae:7.3f} {r.halo:5.1f} "
            f"{r.confidence:5.2f} {mark:6s} {r.reasons[:70]}"
        )


def print_summary(rows: list[Row], threshold: float) -> None:
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_kind[r.kind].append(r)
    print(f"\nreview threshold {threshold:.2f}; halo = white-master edge error (0-255)")
    print(
        f"{'background':10s} {'IoU':>6s} {'minIoU':>6s} {'bF@2':>6s} {'edgeMAE':>7s} "
        f"{'halo':>5s} {'flagged':>8s} {'unflagged<0.90':>14s}"
    )
    for kind in KINDS:
        group = by_kind[kind]
        if not group:
            continue
        flagged = sum(r.confidence < threshold for r in group)
        low = sum(r.iou < 0.90 and r.confidence >= threshold for r in group)
        print(
            f"{kind:10s} {statistics.mean(r.iou for r in group):6.3f} "
            f"{min(r.iou for r in group):6.3f} {statistics.mean(r.bf for r in group):6.3f} "
            f"{statistics.mean(r.mae for r in group):7.3f} "
            f"{statistics.mean(r.halo for r in group):5.1f} "
            f"{flagged:>3d}/{len(group):<4d} {low:>14d}"
        )
    bad = sum(r.iou < 0.80 and r.confidence >= threshold for r in rows)
    seconds = [r.seconds for r in rows]
    print(f"unflagged masks below IoU 0.80: {bad} of {len(rows)}")
    print(
        f"segment time per image: mean {statistics.mean(seconds):.3f} s, max {max(seconds):.3f} s"
    )


def _auc(good: list[float], bad: list[float]) -> float:
    """Probability that a good mask scores higher than a bad one (ties count half)."""
    if not good or not bad:
        return float("nan")
    wins = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
    return wins / (len(good) * len(bad))


def _safe(rows: list[Row], t: float) -> bool:
    """No unflagged mask under 0.80 anywhere, nor under 0.90 on a textured background."""
    unflagged = [r for r in rows if r.confidence >= t]
    return all(r.iou >= 0.80 and (r.kind != "textured" or r.iou >= 0.90) for r in unflagged)


def print_goals(rows: list[Row], threshold: float) -> None:
    """The calibration goals: good (IoU >= 0.95) told from bad (IoU < 0.90)."""
    good = [r.confidence for r in rows if r.iou >= GOOD_IOU]
    bad = [r.confidence for r in rows if r.iou < BAD_IOU]
    flagged = sum(c < threshold for c in good)
    missed = sum(c >= threshold for c in bad)
    print(
        f"\ngoals at threshold {threshold:.2f}: AUC good (IoU>={GOOD_IOU}) vs bad "
        f"(IoU<{BAD_IOU}) {_auc(good, bad):.3f} (goal >= 0.85); bad unflagged {missed}/{len(bad)} "
        f"(goal 0); good flagged {flagged}/{len(good)} = {flagged / max(1, len(good)):.0%} "
        f"(goal <= 10%)"
    )


def print_calibration(rows: list[Row]) -> None:
    print(f"\nconfidence calibration (good: IoU >= {GOOD_IOU})")
    quality = [r for r in rows if r.kind != "textured" and "+" not in r.name]
    for label, group in (("all images", rows), ("single products, not textured", quality)):
        good = [r.confidence for r in group if r.iou >= GOOD_IOU]
        bad = [r.confidence for r in group if r.iou < GOOD_IOU]
        print(f"  {label}: {len(good)} good, {len(bad)} bad, AUC {_auc(good, bad):.3f}")
    good = [r.confidence for r in rows if r.iou >= GOOD_IOU]
    bad = [r.confidence for r in rows if r.iou < GOOD_IOU]
    print(f"{'threshold':>9s} {'good flagged':>12s} {'bad caught':>10s} {'unflagged<0.80':>14s}")
    for t in np.round(np.arange(0.30, 0.951, 0.05), 2):
        low = sum(r.iou < 0.80 and r.confidence >= t for r in rows)
        print(
            f"{t:9.2f} {sum(c < t for c in good):>6d}/{len(good):<5d} "
            f"{sum(c < t for c in bad):>4d}/{len(bad):<5d} {low:>14d}"
            + ("  safe" if _safe(rows, t) else "")
        )
    safe = [t for t in np.round(np.arange(0.05, 1.0, 0.01), 2) if _safe(rows, t)]
    if safe:
        print(
            f"safe thresholds (no unflagged mask under 0.80, nor under 0.90 on a texture): "
            f"{min(safe):.2f}-{max(safe):.2f}"
        )
    print("(every textured background and every photo with several products is flagged on")
    print(" purpose: those are counted as 'good flagged' when their masks are good)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--segmenter", type=Path, help="a .py file with segment_product")
    parser.add_argument(
        "--neural", default=Settings().imaging.segmenter, help="segmenter spec name, or 'classical'"
    )
    parser.add_argument("--threshold", type=float, default=Settings().imaging.review_threshold)
    parser.add_argument("--no-rows", action="store_true", help="only the summaries")
    parser.add_argument("--only", default="", help="score only images whose name contains this")
    args = parser.parse_args()
    settings = Settings(segmenter=args.neural)
    segmenter = _load_segmenter(args.segmenter, settings)
    samples = [s for s in build_set(args.data) if args.only in s.name]
    rows = [score(sample, segmenter) for sample in samples]
    if not args.no_rows:
        print_rows(rows, args.threshold)
    print_summary(rows, args.threshold)
    print_calibration(rows)
    print_goals(rows, args.threshold)


if __name__ == "__main__":
    main()
