"""Upload-to-manifest latency through the real path: SeaweedFS, `prefect server`, `serve`.

For 10 uploads one after another: the time from a photo landing under
<store>/<incoming prefix> (s3://<bucket>/out/incoming/LAT-<i>.jpg) to its
<store>/LAT-<i>/manifest.json appearing. Reference in the same run: a direct in-process
`run_product` of the same photo against the same S3 store (the image work alone). Then the
flow and task runs the uploads created, and those of a 100-product catalog refresh run
twice (second run: everything unchanged) against the same server.

    .venv/bin/python bench/upload_latency.py                  # uploads, then the refreshes
    .venv/bin/python bench/upload_latency.py --uploads-only   # the latency alone

`serve` runs with the README's own settings: only PREFECT_API_URL, PRODUCT_IMAGES_STORE and
the S3 variables are set (sensor interval, incoming prefix and runner poll are the defaults).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from product_images.testing.fixtures.images import draw_product
from product_images.testing.seaweedfs import SeaweedServer
from product_images.wiring import wire

BIN = Path(sys.executable).parent
BUCKET = "latency"
STORE = f"s3://{BUCKET}/out"
STORE_PREFIX = "out/"
INCOMING = "incoming/"
UPLOADS = 10
CATALOG_SIZE = 100
POLL = 0.1
TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _photo(seed: int, size: tuple[int, int] = (800, 600)) -> bytes:
    colour = (60 + (seed * 37) % 180, 40 + (seed * 53) % 180, 40 + (seed * 71) % 180)
    image, _ = draw_product(size=size, colour=colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _wait_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server not healthy within {timeout:g}s")


def _stop(proc: subprocess.Popen[bytes] | None, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        print(f"  ({name} did not stop on SIGTERM; killing)")
        proc.kill()
        proc.wait(timeout=10)


def _wait_key(s3: Any, key: str, timeout: float = TIMEOUT) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            s3.head_object(Bucket=BUCKET, Key=key)
            return True
        except ClientError:
            time.sleep(POLL)
    return False


def _all_flow_runs(client: Any) -> list[Any]:
    runs, offset = [], 0
    while True:
        page = client.read_flow_runs(limit=200, offset=offset)
        runs.extend(page)
        if len(page) < 200:
            return runs
        offset += 200


def _task_runs_of(client: Any, flow_run_ids: list[Any]) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    if not flow_run_ids:
        return []
    tasks: list[Any] = []
    for start in range(0, len(flow_run_ids), 100):
        ids = flow_run_ids[start : start + 100]
        offset = 0
        while True:
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
                limit=200,
                offset=offset,
            )
            tasks.extend(page)
            if len(page) < 200:
                break
            offset += 200
    return tasks


def _children(runs: list[Any], roots: set[Any], client: Any) -> set[Any]:
    """Flow-run ids of `roots` and all their subflow runs (parent_task_run_id chain)."""
    ids = set(roots)
    while True:
        tasks = {t.id for t in _task_runs_of(client, sorted(ids, key=str))}
        more = {r.id for r in runs if r.parent_task_run_id in tasks} - ids
        if not more:
            return ids
        ids |= more


def _settled_count(count: Any, wait: float = 15.0) -> Any:
    """Task runs reach the server through events: count until two reads agree."""
    previous, deadline = None, time.monotonic() + wait
    while True:
        current = count()
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current
        time.sleep(2)


def _upload_runs(since: datetime, until: datetime) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(limit=200)}

        def count() -> tuple[Counter[str], int]:
            runs = [
                r
                for r in _all_flow_runs(client)
                if r.start_time is not None and since <= r.start_time <= until
            ]
            by_flow = Counter(flows.get(r.flow_id, str(r.flow_id)) for r in runs)
            tasks = _task_runs_of(client, [r.id for r in runs])
            return by_flow, len(tasks)

        by_flow, tasks = _settled_count(count)
    total = sum(by_flow.values())
    window = (until - since).total_seconds()
    print(f"\nPrefect runs started during the {UPLOADS} uploads ({window:.0f} s)")
    for name, n in sorted(by_flow.items()):
        print(f"  flow runs {name:<22}: {n:4d}  ({n / UPLOADS:.1f} per upload)")
    print(f"  flow runs total             : {total:4d}  ({total / UPLOADS:.1f} per upload)")
    print(f"  task runs total             : {tasks:4d}  ({tasks / UPLOADS:.1f} per upload)")


def _breakdown(uploaded_at: dict[str, datetime]) -> None:
    """Where the time goes: upload -> run created (by serve, or by a trigger from an event)
    -> run started -> run ended."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = {r.name: r for r in _all_flow_runs(client)}
    steps: dict[str, list[float]] = {"run created": [], "run started": [], "run ended": []}
    for sku, at in uploaded_at.items():
        run = runs.get(f"product-{sku}")
        if run is None or run.start_time is None or run.end_time is None:
            continue
        previous = at
        for name, point in zip(steps, [run.created, run.start_time, run.end_time], strict=True):
            steps[name].append((point - previous).total_seconds())
            previous = point
    print("  median step times (each from the previous step):")
    for name, values in steps.items():
        if values:
            print(f"    {name:<12}: {statistics.median(values):5.2f} s  (n={len(values)})")


def _refresh(catalog: Path, store: Path, label: str) -> None:
    from prefect.client.orchestration import get_client

    from product_images.flows.process_catalog import process_catalog

    start = time.perf_counter()
    state = process_catalog(catalog=str(catalog), store=str(store), return_state=True)
    wall = time.perf_counter() - start
    summary = state.result()
    statuses = Counter(r.status for r in summary.results)
    root = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:

        def count() -> tuple[int, int]:
            runs = _all_flow_runs(client)
            ids = _children(runs, {root}, client)
            return len(ids), len(_task_runs_of(client, sorted(ids, key=str)))

        flow_runs, task_runs = _settled_count(count)
    print(
        f"  {label:<24}: {wall:6.1f} s  flow runs {flow_runs:3d}  task runs {task_runs:4d}  "
        f"({task_runs / CATALOG_SIZE:.2f} task runs per product)  statuses {dict(statuses)}"
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="upload-latency-"))
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    seaweed = SeaweedServer()
    try:
        seaweed.start()
        seaweed.create_bucket(BUCKET)
        s3 = seaweed.client()
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api"
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "PRODUCT_IMAGES_", "AWS_"))
            and k not in ("GEMINI_API_KEY", "OPENAI_API_KEY")
        }
        server_env = base_env | {
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_API_URL": api,
            "PREFECT_API_URL": api,
        }
        # This process talks to the same server and S3; set before prefect is imported.
        os.environ.update(seaweed.env())
        os.environ.update(
            {
                "PREFECT_API_URL": api,
                "PREFECT_HOME": str(tmp / "client-home"),
                "PRODUCT_IMAGES_BACKEND": "local",
                "PREFECT_LOGGING_LEVEL": "WARNING",
            }
        )
        for name in ("GEMINI_API_KEY", "OPENAI_API_KEY"):
            os.environ.pop(name, None)
        server_log = (tmp / "prefect-server.log").open("wb")
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(("prefect server", server))
        t = time.perf_counter()
        _wait_health(api, server)
        print(f"prefect server healthy after {time.perf_counter() - t:.1f} s on {api}")

        # Reference: the image work alone, in this process, same photo, same S3 store.
        from product_images.request import ProductRequest
        from product_images.runner import run_product
        from product_images.settings import get_settings
        from product_images.store import open_store

        settings = get_settings().model_copy(update={"store": STORE})
        store = open_store(STORE)
        reference = []
        for i in range(3):
            key = f"{STORE_PREFIX}reference/REF-{i}.jpg"
            s3.put_object(Bucket=BUCKET, Key=key, Body=_photo(1), ContentType="image/jpeg")
            request = ProductRequest(
                sku=f"REF-{i}", source=f"s3://{BUCKET}/{key}", platforms=settings.imaging.platforms
            )
            t = time.perf_counter()
            result = run_product(request.model_copy(update={"force": True}), wire(settings, store))
            reference.append(time.perf_counter() - t)
            assert result.status != "failed", result
        ref = statistics.median(reference)

        serve_env = (
            base_env
            | seaweed.env()
            | {
                "PREFECT_HOME": str(tmp / "serve-home"),
                "PREFECT_API_URL": api,
                "PRODUCT_IMAGES_STORE": STORE,
                "PRODUCT_IMAGES_BACKEND": "local",
            }
        )
        serve_log = (tmp / "serve.log").open("wb")
        serve = subprocess.Popen(
            [str(BIN / "product-images"), "serve"],
            env=serve_env,
            stdout=serve_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(("product-images serve", serve))
        time.sleep(8)  # deployments registered, first sensor look done
        if serve.poll() is not None:
            raise RuntimeError(f"serve exited with {serve.returncode}; see {tmp}/serve.log")

        print(
            f"\nUpload -> manifest latency, {UPLOADS} uploads one after another "
            f"(README settings: sensor interval {settings.serving.sensor_interval_seconds:g} s, "
            f"local backend, "
            f"800x600 JPEG, platforms {','.join(settings.imaging.platforms)})"
        )
        since = datetime.now(UTC) - timedelta(seconds=1)
        latencies, uploaded_at = [], {}
        for i in range(1, UPLOADS + 1):
            body = _photo(i)
            key = f"{STORE_PREFIX}{INCOMING}LAT-{i}.jpg"
            manifest = f"{STORE_PREFIX}LAT-{i}/manifest.json"
            s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/jpeg")
            t0 = time.perf_counter()
            uploaded_at[f"LAT-{i}"] = datetime.now(UTC)
            if not _wait_key(s3, manifest):
                print(f"  LAT-{i}: no manifest within {TIMEOUT:g} s (logs in {tmp})")
                continue
            latencies.append(time.perf_counter() - t0)
            print(f"  LAT-{i:<2}: {latencies[-1]:6.2f} s")
        until = datetime.now(UTC) + timedelta(seconds=1)
        if latencies:
            median = statistics.median(latencies)
            print(
                f"  median {median:.2f} s  min {min(latencies):.2f} s  max {max(latencies):.2f} s"
                f"  ({len(latencies)}/{UPLOADS} arrived)"
            )
            print(
                f"  reference: in-process run_product, same photo and S3 store: median "
                f"{ref:.2f} s of {len(reference)} ({', '.join(f'{x:.2f}' for x in reference)})"
            )
            print(
                f"  ratio median latency / image work: {median / ref:.1f}x  "
                f"(orchestration overhead ~{median - ref:.2f} s per upload)"
            )
        _breakdown(uploaded_at)
        _upload_runs(since, until)
        if "--uploads-only" in sys.argv:
            return

        # 100-product catalog refresh, local store, same server, run in this process.
        photos = tmp / "catalog"
        photos.mkdir()
        rows = ["sku,source"]
        for i in range(CATALOG_SIZE):
            (photos / f"CAT-{i:03d}.jpg").write_bytes(_photo(i, size=(320, 240)))
            rows.append(f"CAT-{i:03d},{photos / f'CAT-{i:03d}.jpg'}")
        catalog = tmp / "catalog.csv"
        catalog.write_text("\n".join(rows) + "\n")
        print(
            f"\nCatalog refresh, {CATALOG_SIZE} products (320x240), local store, "
            f"process_catalog in this process against the same server"
        )
        _refresh(catalog, tmp / "catalog-out", "first run (all new)")
        _refresh(catalog, tmp / "catalog-out", "second run (unchanged)")
    except BaseException:
        for log in ("prefect-server.log", "serve.log"):
            if (tmp / log).exists():
                print(f"\n--- tail of {log} ---\n{(tmp / log).read_text()[-3000:]}")
        raise
    finally:
        for name, proc in reversed(procs):
            _stop(proc, name)
        seaweed.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
