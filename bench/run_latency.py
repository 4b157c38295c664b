"""Wall time of one `product-images run` of a 1 MP photo, end to end, no Prefect server
(issue 13: <= 1.5 s; the default platforms, 11 images).

Each run gets a fresh store, so none is skipped as unchanged. Reference in the same run: a
bare Python process that decodes the same photo and encodes one JPEG (the floor any CLI pays:
interpreter start, Pillow import, one decode, one encode). With `--before DIR` (a checkout of
an older commit, e.g. `git worktree add /tmp/before <commit>`), that checkout's code runs the
same command too, alternating with ours so machine load falls on both alike.

    .venv/bin/python bench/run_latency.py [--repeat 5] [--photo PHOTO] [--before DIR]

Without --photo, a drawn 1 MP photo is used (the dev photos are not needed).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from product_images.testing.fixtures.images import draw_product

GOAL_SECONDS = 1.5
FLOOR = (
    "import sys, io; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); "
    "im.save(io.BytesIO(), 'JPEG', quality=90)"
)
# The CLI's entry point, run by this interpreter: with PYTHONPATH at a checkout, its code.
CLI = "import sys; from product_images.cli.main import main; sys.argv[0] = 'product-images'; main()"


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the child's CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # From a neutral folder: `python -c` puts the working folder first on sys.path.
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _run(photo: Path, store: Path, code: Path | None) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, "-c", CLI, "run", str(photo), "--sku", "BENCH-1"]
    return [*cmd, "--store", str(store), "--engine", "inline"], env


def _line(label: str, runs: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in runs]
    cpu = statistics.median(c for _, c in runs)
    return (
        f"  {label:7s}: median {statistics.median(walls):.2f} s wall "
        f"(min {min(walls):.2f}, max {max(walls):.2f}), CPU {cpu:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--photo", type=Path, help="A photo (default: a drawn 1 MP one).")
    parser.add_argument("--before", type=Path, help="A checkout to compare with.")
    args = parser.parse_args()
    ours_code = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        photo = args.photo
        if photo is None:
            photo = Path(tmp) / "photo.jpg"
            draw_product(size=(1155, 866))[0].save(photo, quality=92)  # 1.0 MP
        results: dict[str, list[tuple[float, float]]] = {"ours": [], "before": [], "floor": []}
        codes = {"ours": ours_code, "before": args.before}
        for i in range(args.repeat):
            for label, code in codes.items():
                if code is not None:
                    cmd, env = _run(photo, Path(tmp) / f"{label}-{i}", code)
                    results[label].append(_time(cmd, env))
            floor_cmd = [sys.executable, "-c", FLOOR, str(photo)]
            results["floor"].append(_time(floor_cmd, dict(os.environ)))
    _report(photo, args.repeat, results)


def _report(photo: Path, repeat: int, results: dict[str, list[tuple[float, float]]]) -> None:
    print(f"product-images run {photo.name}, default platforms, inline, {repeat} runs each")
    for label, runs in results.items():
        if runs:
            print(_line(label, runs))
    ours = statistics.median(wall for wall, _ in results["ours"])
    floor = statistics.median(wall for wall, _ in results["floor"])
    if results["before"]:
        before = statistics.median(wall for wall, _ in results["before"])
        print(f"  ours / before: {ours / before:.2f}x")
    verdict = "met" if ours <= GOAL_SECONDS else "NOT met"
    print(f"  ours / floor: {ours / floor:.1f}x   goal: ours <= {GOAL_SECONDS} s -> {verdict}")


if __name__ == "__main__":
    main()
