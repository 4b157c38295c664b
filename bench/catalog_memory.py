"""Memory at catalog scale (issue 7, item 4): a catalog of small generated photos through the
catalog flow, against a real `prefect server` and the stand-in Gemini server at low latency.

Three kinds of process are watched: the flow (`catalog_flow(None, --products-at-once)` in a
child process of this script), the Prefect server (with its child processes) and the stand-in.
Every ~0.5 s each one's RSS is sampled, with the number of products published so far (their
manifests). Printed: peak RSS per process, pixel workers included (goal <= 500 MB), the mean
RSS over the first and last quarter of the run (by products done) and their ratio (goal <=
1.05; "growth*" is the same ratio with the first quarter counted from the first product
published, leaving out the flow process starting up: importing, wiring, pixel workers; the
flow's RSS is also split into anonymous and file-backed, /proc/PID/smaps_rollup), the flow runs
and task runs the server holds per product, and the Prefect server's CPU: seconds per wall
second and its share of the CPU the three processes used.

    .venv/bin/python bench/catalog_memory.py [--products 2000] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from throughput import _cpu_seconds, _environment, _services
from upload_latency import _stop

from product_images.allocator import bound_arenas
from product_images.testing.fixtures.images import draw_product

MB = 1024 * 1024
PEAK_GOAL_MB = 500
GROWTH_GOAL = 1.05
SAMPLE_SECONDS = 0.5
PROGRESS_EVERY = 120  # samples between progress lines (~1 min)


def _photo(seed: int) -> bytes:
    """A distinct 320x240 photo per seed (colour and box both vary), so nothing is cached."""
    colour = (40 + seed % 200, 40 + (seed // 200) % 200, 60 + (seed * 7) % 180)
    left, top = 60 + seed % 17, 40 + (seed // 17) % 13
    image, _ = draw_product(size=(320, 240), colour=colour, box=(left, top, left + 180, top + 150))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _catalog(folder: Path, products: int) -> Path:
    folder.mkdir()
    rows = ["sku,source"]
    for i in range(products):
        photo = folder / f"CM-{i:05d}.jpg"
        photo.write_bytes(_photo(i))
        rows.append(f"CM-{i:05d},{photo}")
    catalog = folder / "catalog.csv"
    catalog.write_text("\n".join(rows) + "\n")
    return catalog


@dataclass
class Samples:
    """RSS samples (bytes) per process label, with the products done at each sample."""

    rss: dict[str, list[int]] = field(default_factory=dict)
    done: list[int] = field(default_factory=list)


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0  # the process ended between two samples


def _anonymous(proc: psutil.Process) -> int:
    """The process's anonymous RSS (heaps, arrays; the rest of its RSS is file-backed: code
    and data of the libraries it loaded, counted once a page of them is touched)."""
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as rollup:
            fields = dict(line.split(":", 1) for line in rollup if line.startswith("Anonymous:"))
    except OSError:
        return 0
    return int(fields["Anonymous"].split()[0]) * 1024 if fields else 0


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _sample(roots: dict[str, psutil.Process], store: Path, samples: Samples) -> None:
    for label, root in roots.items():
        for i, proc in enumerate(_tree(root)):
            name = label if i == 0 else f"{label} child {proc.pid}"
            samples.rss.setdefault(name, []).append(_rss(proc))
        if label == "flow":  # what kind of memory the flow's RSS is
            anonymous, rss = _anonymous(root), samples.rss[label][-1]
            samples.rss.setdefault("flow: anonymous", []).append(anonymous)
            samples.rss.setdefault("flow: file-backed", []).append(max(rss - anonymous, 0))
    samples.done.append(sum(1 for _ in store.glob("*/manifest.json")) if store.exists() else 0)


class Sampler:
    """Samples the process trees every SAMPLE_SECONDS on a thread until `stop()`."""

    def __init__(self, roots: dict[str, psutil.Process], store: Path) -> None:
        self.roots, self.store, self.samples = roots, store, Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Samples:
        self._stop.set()
        self._thread.join()
        return self.samples

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            _sample(self.roots, self.store, self.samples)
            if len(self.samples.done) % PROGRESS_EVERY == 0:
                rss = {k: f"{v[-1] / MB:.0f}" for k, v in self.samples.rss.items()}
                print(f"  {self.samples.done[-1]} products done, RSS MB {rss}", flush=True)


def _quarter_means(
    rss: list[int], done: list[int], products: int, since: int = 0
) -> tuple[float, float]:
    """Mean RSS while the first quarter of products was being made (from `since` products
    done), and the last quarter."""
    first = [r for r, d in zip(rss, done, strict=False) if since <= d < products / 4]
    last = [r for r, d in zip(rss, done, strict=False) if products * 3 / 4 <= d < products]
    mean = lambda xs: sum(xs) / len(xs) / MB if xs else float("nan")  # noqa: E731
    return mean(first), mean(last)


def _run_child(
    args: argparse.Namespace, catalog: Path, store: Path, log: Path
) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "--child", str(catalog), str(store)]
    command += ["--products-at-once", str(args.products_at_once)]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


def child(catalog: str, store: str, at_once: int) -> None:
    """The flow process: one catalog run; prints its statuses as the last line (JSON)."""
    from throughput import _run_catalog

    bound_arenas()  # first, as `product-images batch` does: the flow's own call comes after
    # Prefect's threads have made their heaps, which glibc keeps

    results, wall = _run_catalog("flow", Path(catalog), Path(store), at_once)
    print(json.dumps({"wall": wall, "statuses": Counter(r.status for r in results)}))


def _run_counts(api: str, settle: float = 30.0) -> tuple[int, Counter[str]]:
    """Flow runs, and task runs by task name, once the server's count stops moving (task runs
    reach the server through its event pipeline, a little after the flow ends)."""
    with httpx.Client(base_url=api, timeout=30) as client:
        last, deadline = -1, time.monotonic() + settle
        while time.monotonic() < deadline:
            count = client.post("/task_runs/count", json={}).json()
            if count == last:
                break
            last = count
            time.sleep(3)
        flows = client.post("/flow_runs/count", json={}).json()
        names: Counter[str] = Counter()
        for offset in range(0, last, 200):
            page = client.post("/task_runs/filter", json={"offset": offset, "limit": 200}).json()
            names.update(run["task_key"].rsplit("-", 1)[0] for run in page)
    return flows, names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--gemini-concurrency", type=int, default=8)
    parser.add_argument("--products-at-once", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-size", default="512")
    parser.add_argument("--master-side", type=int, default=512)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--samples", type=Path, help="write every sample (RSS per process, products done) as JSON"
    )
    parser.add_argument("--child", nargs=2, metavar=("CATALOG", "STORE"), help=argparse.SUPPRESS)
    return parser


def _tree_cpu(root: psutil.Process) -> float:
    """CPU seconds of a process and its live children (and of the children it reaped)."""
    total = 0.0
    for proc in _tree(root):
        try:
            total += _cpu_seconds(proc)
        except psutil.Error:
            continue
    return total


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _print_memory(samples: Samples, products: int) -> None:
    print(
        f"\n{'process':34s} {'peak MB':>8s} {'1st qtr MB':>11s} {'last qtr MB':>12s} "
        f"{'growth':>7s} {'growth*':>8s}"
    )
    for name, rss in samples.rss.items():
        first, last = _quarter_means(rss, samples.done, products)
        settled, _ = _quarter_means(rss, samples.done, products, since=1)
        peak = max(rss) / MB
        verdict = "ok" if peak <= PEAK_GOAL_MB else f"> {PEAK_GOAL_MB}"
        verdict += "" if last / first <= GROWTH_GOAL else f", grows > {GROWTH_GOAL}"
        print(
            f"{name:34s} {peak:8.0f} {first:11.0f} {last:12.0f} {last / first:7.3f} "
            f"{last / settled:8.3f}  {verdict}"
        )
    print(
        f"  {len(samples.done)} samples every {SAMPLE_SECONDS} s; quarters by products done; "
        "growth*: the first quarter from the first product published"
    )


def _print_cpu(wall: float, cpu: dict[str, float]) -> None:
    used = sum(cpu.values())
    print(f"\nCPU over the flow's {wall:.0f} s:")
    for name, seconds in cpu.items():
        print(
            f"  {name:14s} {seconds:7.1f} s  {seconds / wall:5.0%} of one core  "
            f"{seconds / used:5.0%} of the CPU these processes used"
        )


def _print_runs(flows: int, tasks: Counter[str], products: int) -> None:
    total = sum(tasks.values())
    print(
        f"\nruns on the server: {flows} flow runs ({flows / products:.4f} per product), "
        f"{total} task runs ({total / products:.3f} per product)"
    )
    for name, count in tasks.most_common():
        print(f"  task {name}: {count} ({count / products:.3f} per product)")


def _measure(
    args: argparse.Namespace, tmp: Path, server: psutil.Process, standin: psutil.Process
) -> None:
    catalog, store = _catalog(tmp / "photos", args.products), tmp / "store"
    flow_cpu, started = _children_cpu(), time.perf_counter()
    server_cpu, standin_cpu = _tree_cpu(server), _tree_cpu(standin)
    proc = _run_child(args, catalog, store, tmp / "flow.log")
    sampler = Sampler(
        {"flow": psutil.Process(proc.pid), "prefect server": server, "stand-in": standin}, store
    )
    sampler.start()
    proc.wait()
    samples, wall = sampler.stop(), time.perf_counter() - started
    cpu = {
        "flow process": _children_cpu() - flow_cpu,
        "prefect server": _tree_cpu(server) - server_cpu,
        "stand-in": _tree_cpu(standin) - standin_cpu,
    }
    last = (tmp / "flow.log").read_text().strip().splitlines()[-1:] or [""]
    print(f"flow process exited {proc.returncode} after {wall:.0f} s: {last[0]}")
    _print_memory(samples, args.products)
    if args.samples:  # to see where in the run RSS rose (start-up ramp or along the run)
        args.samples.write_text(json.dumps({"done": samples.done, "rss": samples.rss}))
    _print_cpu(wall, cpu)
    _print_runs(*_run_counts(os.environ["PREFECT_API_URL"]), args.products)


def main() -> None:
    args = _parser().parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.products_at_once)
        return
    tmp = Path(tempfile.mkdtemp(prefix="catalog-memory-"))
    procs: tuple[subprocess.Popen[bytes], ...] = ()
    try:
        procs = _services(tmp, args.latency)
        api, standin = os.environ.pop("BENCH_API"), os.environ.pop("BENCH_STANDIN")
        os.environ.pop("BENCH_INSTANT")  # the instant stand-in is throughput.py's, unused here
        os.environ.update(_environment(args, api, standin, tmp))
        print(
            f"{args.products} products (distinct 320x240 photos, pinduoduo, masters "
            f"{args.master_side} px, imageSize {args.image_size}), {args.products_at_once} at "
            f"once; stand-in latency {args.latency} s, gemini_concurrency "
            f"{args.gemini_concurrency}; prefect server {api}"
        )
        _measure(args, tmp, *(psutil.Process(p.pid) for p in procs[:2]))  # server, stand-in
    finally:
        for proc in reversed(procs):
            _stop(proc, "service")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
