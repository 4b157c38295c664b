"""Wall time of one `product-images run` of a 1 MP photo, end to end, no Prefect server.

Reference in the same run: a bare Python process that decodes the same photo and encodes
one JPEG (the floor any CLI pays: interpreter start, Pillow import, one decode, one encode).

    .venv/bin/python bench/run_latency.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from product_images.testing.fixtures.images import draw_product

BIN = Path(sys.executable).parent / "product-images"
FLOOR = (
    "import sys, io; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); "
    "im.save(io.BytesIO(), 'JPEG', quality=90)"
)


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        draw_product(size=(1155, 866))[0].save(photo, quality=92)  # 1.0 MP
        run = [
            str(BIN),
            "run",
            str(photo),
            "--sku",
            "BENCH-1",
            "--store",
            f"{tmp}/out",
            "--platforms",
            "amazon,shopify,instagram",
        ]
        ours = [_time(run, env) for _ in range(args.repeat)]
        floor = [_time([sys.executable, "-c", FLOOR, str(photo)], env) for _ in range(args.repeat)]
    median, ref = statistics.median(ours), statistics.median(floor)
    print(
        f"product-images run, 1 MP photo, amazon+shopify+instagram (11 slots), {args.repeat} runs"
    )
    print(f"  ours : median {median:.2f} s  (min {min(ours):.2f}, max {max(ours):.2f})")
    print(f"  floor: median {ref:.2f} s  (python + Pillow decode + one JPEG encode)")
    verdict = "met" if median <= 2.0 else "NOT met"
    print(f"  ratio ours/floor: {median / ref:.1f}x   goal: ours <= 2.0 s -> {verdict}")


if __name__ == "__main__":
    main()
