"""Throughput with a slow API (issues 7 and 13): generated images per second of a catalog, for
the inline engine (`product-images batch` without Prefect) and the Prefect catalog flow (real
`prefect server`), against two stand-in Gemini servers: one answering at once (the CPU-bound
rate) and one after --latency seconds (2.0). Each is run with the pixel work in this process
(`processes` 0, how it was before issue 13) and in --processes worker processes (the default:
the core count), all in one run, interleaved.

Reference in the same run, before and after: a bare asyncio script with a semaphore of
--gemini-concurrency sending the same number of generateContent requests (our client's body)
to the slow stand-in, without durability; and the ideal, concurrency / latency. Printed per
configuration: images/s, / ideal, / bare asyncio, and CPU seconds per product (this process
plus its pixel workers).

    .venv/bin/python bench/throughput.py [--products 120] [--latency 2.0] [--gemini-concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from upload_latency import _free_port, _stop, _wait_health

from product_images.testing.fixtures.images import draw_product
from product_images.wiring import wire

BIN = Path(sys.executable).parent
API_KEY = "bench-key"
MODEL = "gemini-3.1-flash-image"
PLATFORMS = '["pinduoduo"]'  # three 750 px slots: one per master
HOUR = 3600.0


def _photo(seed: int) -> bytes:
    colour = (60 + (seed * 37) % 180, 40 + (seed * 53) % 180, 40 + (seed * 71) % 180)
    image, _ = draw_product(size=(320, 240), colour=colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _catalog(folder: Path, products: int) -> Path:
    folder.mkdir()
    rows = ["sku,source"]
    for i in range(products):
        photo = folder / f"TP-{i:04d}.jpg"
        photo.write_bytes(_photo(i))
        rows.append(f"TP-{i:04d},{photo}")
    catalog = folder / "catalog.csv"
    catalog.write_text("\n".join(rows) + "\n")
    return catalog


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stand-in exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("stand-in did not start")


def _request_body(photo: bytes, image_size: str) -> dict[str, Any]:
    from product_images.generative.base import GenerationRequest, ImageInput
    from product_images.generative.gemini import build_request_body

    prompt = "Lifestyle product photo of the product in the image, on a studio set."
    request = GenerationRequest(prompt=prompt, images=(ImageInput(photo, "image/jpeg"),))
    return build_request_body(request, MODEL, image_size)


async def _bare_asyncio(url: str, body: dict[str, Any], calls: int, slots: int) -> float:
    """The seed's batch generator without durability: `calls` requests, `slots` at a time;
    returns the wall seconds."""
    semaphore = asyncio.Semaphore(slots)
    endpoint = f"{url}/v1beta/models/{MODEL}:generateContent"
    headers = {"x-goog-api-key": API_KEY}
    limits = httpx.Limits(max_connections=slots, max_keepalive_connections=slots)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one() -> None:
            async with semaphore:
                answer = await client.post(endpoint, json=body, headers=headers)
                answer.raise_for_status()
                answer.json()["candidates"][0]["content"]["parts"]

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
        return time.perf_counter() - started


def _ledger_window(store: Path) -> tuple[int, float]:
    """(ok generations, seconds from the first one's start to the last one's end)."""
    from product_images.generative.ledger import Ledger
    from product_images.store import LocalStore

    entries = [e for e in Ledger(LocalStore(store)).entries() if e.outcome == "ok"]
    starts = [e.time.timestamp() - e.seconds for e in entries]
    ends = [e.time.timestamp() for e in entries]
    return len(entries), max(ends) - min(starts)


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _run_catalog(engine: str, catalog: Path, store: Path, at_once: int) -> tuple[Any, float]:
    """The catalog through `engine` ("inline" or "flow"); (results, wall seconds)."""
    from product_images.catalog import load_catalog
    from product_images.cli.engine import run_catalog
    from product_images.flows.process_catalog import catalog_flow
    from product_images.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings().model_copy(update={"store": str(store)})
    started = time.perf_counter()
    if engine == "flow":
        results = catalog_flow(None, at_once)(catalog=str(catalog), store=str(store)).results
    else:
        loaded = load_catalog(str(catalog), settings.imaging.platforms)
        results = run_catalog(loaded, wire(settings), lambda result: None)
    return results, time.perf_counter() - started


def _pixel_cpu(me: psutil.Process, services: set[int]) -> float:
    """CPU seconds of this process and its pixel workers (not the services it started)."""
    workers = [c for c in me.children(recursive=True) if c.pid not in services]
    total = _cpu_seconds(me)
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker replaced meanwhile
            total += sum(worker.cpu_times()[:2])
    return total


def _report(
    args: argparse.Namespace, rows: list[tuple[str, float, float]], refs: list[float]
) -> None:
    ideal = args.gemini_concurrency / args.latency
    ref = sum(refs) / len(refs)
    print(
        f"\n{'':34s} {'images/s':>9s} {'images/h':>9s} {'/ ideal':>8s} {'/ bare':>7s} "
        f"{'CPU/product':>12s}"
    )
    print(f"{'ideal (concurrency/latency)':34s} {ideal:9.2f} {ideal * HOUR:9.0f} {1:8.2f}")
    print(f"{'bare asyncio (mean of 2)':34s} {ref:9.2f} {ref * HOUR:9.0f} {ref / ideal:8.2f}")
    for label, rate, cpu in rows:
        print(
            f"{label:34s} {rate:9.2f} {rate * HOUR:9.0f} {rate / ideal:8.2f} {rate / ref:7.2f} "
            f"{cpu:10.3f} s"
        )
    print(f"  bare asyncio runs: {', '.join(f'{r:.2f}' for r in refs)} images/s")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=120)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--gemini-concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--engines", default="inline,flow")
    parser.add_argument("--products-at-once", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-size", default="512")
    parser.add_argument("--master-side", type=int, default=512)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser


def _environment(args: argparse.Namespace, api: str, standin: str, tmp: Path) -> dict[str, str]:
    rpm = max(300.0, 3 * 60 * args.gemini_concurrency / args.latency)  # never the bottleneck
    return {
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp / "client-home"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PRODUCT_IMAGES_BACKEND": "gemini",
        "GEMINI_API_KEY": API_KEY,
        "GEMINI_BASE_URL": standin,
        "GEMINI_MODEL": MODEL,
        "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE": args.image_size,
        "PRODUCT_IMAGES_GEMINI_CONCURRENCY": str(args.gemini_concurrency),
        "PRODUCT_IMAGES_GEMINI_RPM": str(rpm),
        "PRODUCT_IMAGES_CONCURRENCY": str(args.products_at_once),
        "PRODUCT_IMAGES_THREADS": str(args.threads),
        "PRODUCT_IMAGES_MASTER_SIDE": str(args.master_side),
        "PRODUCT_IMAGES_PLATFORMS": PLATFORMS,
        "PRODUCT_IMAGES_RETRY_BASE_DELAY": "0.2",
    }


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "PRODUCT_IMAGES_", "GEMINI_", "OPENAI_"))
    }


def _standin(tmp: Path, port: int, latency: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "product_images.testing.standin", "--port", str(port)]
    command += ["--latency", str(latency), "--api-key", API_KEY]
    return _start(command, tmp / f"standin-{latency:g}.log", _clean_env())


def _services(tmp: Path, latency: float) -> tuple[subprocess.Popen[bytes], ...]:
    """The prefect server, the slow stand-in and the instant one (BENCH_* variables)."""
    port, slow_port, fast_port = _free_port(), _free_port(), _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = _clean_env() | {
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_API_URL": api,
        "PREFECT_API_URL": api,
    }
    server = _start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        tmp / "prefect-server.log",
        env,
    )
    slow, fast = _standin(tmp, slow_port, latency), _standin(tmp, fast_port, 0.0)
    os.environ["BENCH_API"] = api
    os.environ["BENCH_STANDIN"] = f"http://127.0.0.1:{slow_port}"
    os.environ["BENCH_INSTANT"] = f"http://127.0.0.1:{fast_port}"
    try:
        _wait_port(slow_port, slow)
        _wait_port(fast_port, fast)
        _wait_health(api, server)
    except BaseException:
        for proc in (fast, slow, server):
            _stop(proc, "service")
        raise
    return server, slow, fast


def _configurations(args: argparse.Namespace) -> list[tuple[str, float, int]]:
    """(engine, latency, processes), the processes alternating so load swings hit both."""
    return [
        (engine, latency, processes)
        for latency in (0.0, args.latency)
        for engine in args.engines.split(",")
        for processes in (0, args.processes)
    ]


def _one(
    args: argparse.Namespace,
    tmp: Path,
    config: tuple[str, float, int],
    urls: dict[float, str],
    services: set[int],
) -> tuple[str, float, float]:
    engine, latency, processes = config
    os.environ["GEMINI_BASE_URL"] = urls[latency]
    os.environ["PRODUCT_IMAGES_PROCESSES"] = str(processes)
    name = f"{engine}-{latency:g}-{processes}"
    catalog = tmp / f"photos-{name}"
    me = psutil.Process()
    cpu = _pixel_cpu(me, services)
    results, wall = _run_catalog(
        engine, _catalog(catalog, args.products), tmp / f"store-{name}", args.products_at_once
    )
    cpu = _pixel_cpu(me, services) - cpu
    made, _ = _ledger_window(tmp / f"store-{name}")
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    label = f"{engine}, API {latency:g} s, {processes} processes"
    print(f"{label}: {wall:.1f} s, {made} images, {statuses}, CPU {cpu:.1f} s", flush=True)
    return label, made / wall, cpu / args.products


def main() -> None:
    args = _parser().parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="throughput-"))
    procs: tuple[subprocess.Popen[bytes], ...] = ()
    try:
        procs = _services(tmp, args.latency)
        api, standin = os.environ.pop("BENCH_API"), os.environ.pop("BENCH_STANDIN")
        instant = os.environ.pop("BENCH_INSTANT")
        os.environ.update(_environment(args, api, standin, tmp))
        body = _request_body(_photo(0), args.image_size)
        calls, slots = 2 * args.products, args.gemini_concurrency
        print(
            f"{args.products} products (320x240, pinduoduo, masters {args.master_side} px, "
            f"imageSize {args.image_size}), {args.products_at_once} at once, "
            f"{args.threads} threads each; stand-in latency 0 and {args.latency} s, "
            f"gemini_concurrency {slots}; prefect server {api}; load {os.getloadavg()[0]:.1f}"
        )
        refs = [calls / asyncio.run(_bare_asyncio(standin, body, calls, slots))]
        urls, services = {0.0: instant, args.latency: standin}, {p.pid for p in procs}
        rows = [_one(args, tmp, config, urls, services) for config in _configurations(args)]
        refs.append(calls / asyncio.run(_bare_asyncio(standin, body, calls, slots)))
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
        _report(args, rows, refs)
    finally:
        for proc in reversed(procs):
            _stop(proc, proc.args[0] if isinstance(proc.args, list) else "process")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


if __name__ == "__main__":
    main()
