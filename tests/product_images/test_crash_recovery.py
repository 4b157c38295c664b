"""Crashes that must lose nothing: the S3 server killed mid-batch, the process SIGKILLed.

Both use real parts: a SeaweedFS server of their own (killed and restarted), and the CLI in a
subprocess against the stand-in Gemini server.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from product_images.gc import collect_garbage, verify_published
from product_images.generative.ledger import Ledger
from product_images.manifest import Manifest, stable_key
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.store import LocalStore, S3Store
from product_images.testing.fixtures.images import draw_product
from product_images.testing.seaweedfs import SeaweedServer
from product_images.testing.standin import StandinServer
from product_images.wiring import wire

pytestmark = pytest.mark.s3


def _photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        colour = (40 + 9 * n % 200, 90, 200 - 7 * n % 150)
        path = folder / f"p{n:03d}.jpg"
        draw_product(size=(420, 360), colour=colour)[0].save(path, quality=90)
        paths.append(path)
    return paths


def _requests(paths: list[Path]) -> list[ProductRequest]:
    return [
        ProductRequest(sku=p.stem.upper(), source=str(p), platforms=["pinduoduo"]) for p in paths
    ]


def _stable_copies_match(store, skus: list[str]) -> None:
    for sku in skus:
        manifest = Manifest.model_validate_json(store.get(f"{sku}/manifest.json"))
        for key in manifest.published_keys():
            assert store.get(stable_key(key)) == store.get(key), key


@pytest.fixture
def own_seaweed(tmp_path, monkeypatch):
    """A server this test may kill: the session's shared one must stay up."""
    with SeaweedServer(tmp_path / "weed", stop_timeout=3) as server:
        server.create_bucket("crash")
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


def test_s3_killed_mid_batch_defers_the_rest_and_a_rerun_completes(own_seaweed, tmp_path):
    requests = _requests(_photos(tmp_path / "photos", 14))
    settings = Settings(store="s3://crash", master_side=384)
    store = S3Store("crash", client=own_seaweed.client())
    first: list = []
    killed = threading.Event()

    def run_all():
        for request in requests:
            first.append(run_product(request, wire(settings)))
            if len(first) == 5:
                killed.wait(30)  # the server dies while product 6 is being made

    worker = threading.Thread(target=run_all)
    worker.start()
    while len(first) < 5:
        time.sleep(0.01)
    time.sleep(0.15)  # product 6 is under way
    own_seaweed.kill()
    killed.set()
    worker.join(120)
    assert not worker.is_alive()

    done = [r for r in first if r.status == "done"]
    cut_off = [r for r in first if r.status != "done"]
    assert len(done) >= 5 and cut_off, [r.status for r in first]
    assert {r.reason for r in cut_off} == {"storage_unavailable"}, cut_off
    assert all("S3" in r.message for r in cut_off)

    own_seaweed.start()
    assert verify_published(store) == []  # nothing half-published by the crash
    with ThreadPoolExecutor(2) as pool:
        second = list(pool.map(lambda r: run_product(r, wire(settings)), requests))
    assert {r.sku: r.status for r in second} == {
        r.sku: ("unchanged" if r.status == "done" else "done") for r in first
    }
    assert verify_published(store) == []
    _stable_copies_match(store, [r.sku for r in requests])
    collect_garbage(store, grace_seconds=0, apply=True)  # what product 6 left half-written
    assert verify_published(store) == [] and not collect_garbage(store, 0).orphans
    _stable_copies_match(store, [r.sku for r in requests])


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "product_images.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )


def _manifests(store: LocalStore) -> set[str]:
    return {key.split("/")[0] for key in store.list() if key.endswith("/manifest.json")}


def test_sigkill_mid_batch_then_rerun_pays_nothing_twice(tmp_path):
    paths = _photos(tmp_path / "photos", 12)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,source\n" + "".join(f"{p.stem.upper()},{p}\n" for p in paths))
    out = tmp_path / "out"
    with StandinServer(api_key="sk-crash-test", latency=0.25) as server:
        env = {
            **os.environ,
            "GEMINI_API_KEY": server.api_key,
            "PRODUCT_IMAGES_GEMINI_BASE_URL": server.url,
            "PRODUCT_IMAGES_MASTER_SIDE": "384",
            "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE": "512",
            "PRODUCT_IMAGES_CONCURRENCY": "2",
        }
        env.pop("PREFECT_API_URL", None)
        args = ["batch", str(catalog), "--store", str(out), "--platforms", "pinduoduo"]
        first = _cli([*args, "--engine", "inline"], env)
        store = LocalStore(out)
        deadline = time.monotonic() + 120
        while len(_manifests(store)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        done_before = _manifests(store)
        assert 4 <= len(done_before) < len(paths)
        entries_before = len(Ledger(store).entries())

        second = _cli([*args, "--engine", "inline"], env)
        output = second.communicate(timeout=300)[0].decode()
        assert second.returncode == 0, output

    assert _manifests(store) == {p.stem.upper() for p in paths}
    assert verify_published(store) == []
    rerun = Ledger(store).entries()[entries_before:]
    assert not [e for e in rerun if e.sku in done_before], "paid again for a finished product"
    ok = [(e.sku, e.variant) for e in Ledger(store).entries() if e.outcome == "ok"]
    twice = {pair for pair in ok if ok.count(pair) > 1}
    # only a call answered while the process died can be paid again: 2 products in flight
    assert len(twice) <= 4 and not {sku for sku, _ in twice} & done_before
