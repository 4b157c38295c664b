"""The run budget in the store: one cap for every worker process of a run, on a folder and S3."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from product_images.errors import BudgetExceededError
from product_images.generative.budget import RunBudget
from product_images.generative.ledger import Ledger
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.store import LocalStore, layout
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import StandinServer
from product_images.wiring import wire

STORES = ["local", pytest.param("s3", marks=pytest.mark.s3)]


@pytest.fixture(params=STORES)
def where(request, tmp_path):
    """(store, store URL, environment for a worker process) on a folder or the SeaweedFS bucket."""
    if request.param == "local":
        return LocalStore(tmp_path / "out"), str(tmp_path / "out"), {}
    seaweed, store = request.getfixturevalue("seaweed"), request.getfixturevalue("s3_store")
    return store, f"s3://{store.bucket}", seaweed.env()


def test_a_call_that_could_pass_the_cap_is_refused(where):
    store = where[0]
    budget = RunBudget(store, "run-1", 0.10)
    budget.settle(budget.reserve(0.06), 0.05)
    with pytest.raises(BudgetExceededError, match=r"budget of \$0\.10"):
        budget.reserve(0.06)
    held = budget.reserve(0.05)
    assert RunBudget(store, "run-1", 0.10).totals().committed == pytest.approx(0.10)
    budget.settle(held, 0.0)  # a failed call billed nothing releases its reservation
    assert budget.totals().spent == pytest.approx(0.05)
    assert RunBudget(store, "run-2", 0.10).totals().committed == 0.0  # runs are apart


def test_check_holds_nothing_and_no_cap_writes_nothing(tmp_path):
    store = LocalStore(tmp_path)
    budget = RunBudget(store, "run", 0.10)
    budget.check(0.10)
    with pytest.raises(BudgetExceededError):
        budget.check(0.11)
    assert budget.totals().committed == 0.0
    RunBudget(store, "", None).settle(RunBudget(store, "", None).reserve(5.0), 5.0)
    assert list(store.list()) == []


def test_a_refusal_judged_on_a_stale_total_is_judged_again(tmp_path):
    store = LocalStore(tmp_path)
    mine, other = RunBudget(store, "run", 0.10), RunBudget(store, "run", 0.10)
    held = mine.reserve(0.06)  # `mine` remembers committed = 0.06
    other.settle(held, 0.0)  # another worker settled it: committed is 0 now
    mine.reserve(0.06)  # refused on what `mine` remembers; granted on the newest entry
    assert other.totals().committed == pytest.approx(0.06)


def test_a_lagging_head_hint_is_walked_past(tmp_path):
    store = LocalStore(tmp_path)
    budget = RunBudget(store, "run", 10.0)
    for _ in range(20):
        budget.settle(budget.reserve(0.2), 0.1)
    store.put(layout.budget_head_key("run"), b'{"seq": 3}')  # a slow writer's old hint
    fresh = RunBudget(store, "run", 10.0)
    assert fresh.totals().spent == pytest.approx(2.0)
    fresh.reserve(0.1)  # numbered after the newest entry, not over an old one
    assert len(list(store.list(layout.budget_prefix("run")))) == 40 + 1 + 1


def test_a_capped_budget_needs_a_run_id(tmp_path):
    with pytest.raises(ValueError, match="run's id"):
        RunBudget(LocalStore(tmp_path), "", 1.0)


def test_threads_of_one_process_never_pass_the_cap(tmp_path):
    store, granted = LocalStore(tmp_path), []

    def spend():
        budget = RunBudget(store, "run", 1.0)
        while True:
            try:
                held = budget.reserve(0.03)
            except BudgetExceededError:
                return
            granted.append(1)
            budget.settle(held, 0.03)

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 33 and RunBudget(store, "run", 1.0).totals().spent <= 1.0


# A worker process: waits for the go, then pays for calls until the run's budget refuses one.
# Real costs are below the worst case reserved, sometimes equal; each call is written to the
# ledger. Each call takes 100 ms, so the workers interleave even on a busy machine. Every
# third call starts from a fresh RunBudget (as each product does: no cursor).
_SPENDER = textwrap.dedent(
    """
    import sys
    import time
    from product_images.errors import BudgetExceededError
    from product_images.generative.budget import RunBudget
    from product_images.generative.ledger import Ledger, LedgerEntry
    from product_images.store import open_store

    store, name, calls = open_store(sys.argv[1]), sys.argv[2], 0
    ledger, budget = Ledger(store), RunBudget(store, "shared-run", 1.0)
    print("ready", flush=True)
    sys.stdin.readline()
    while True:
        if calls % 3 == 0:
            budget = RunBudget(store, "shared-run", 1.0)
        try:
            held = budget.reserve(0.03)
        except BudgetExceededError:
            break
        time.sleep(0.1)  # the call: the other worker reserves meanwhile
        cost = 0.03 if calls % 2 else 0.02
        ledger.append(LedgerEntry(sku=name, variant="white", backend="b", model="m",
                                  outcome="ok", cost_usd=cost))
        budget.settle(held, cost)
        calls += 1
    print(calls, flush=True)
    """
)


def _workers(script: str, args: list[list[str]], env: dict[str, str]) -> list[str]:
    """Start one process per argument list, let them all go at once, return their last lines."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *a],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        for a in args
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:  # all at once: communicate() would wait for each to finish in turn
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), outputs
    return [out.strip().splitlines()[-1] for out in outputs]


def test_two_worker_processes_share_one_cap(where):
    store, url, env = where
    calls = [int(n) for n in _workers(_SPENDER, [[url, "A"], [url, "B"]], env)]
    entries = Ledger(store).entries()
    totals = RunBudget(store, "shared-run", 1.0).totals()
    spent = sum(e.cost_usd for e in entries)
    assert all(n > 0 for n in calls) and sum(calls) == len(entries), (calls, len(entries))
    assert spent <= 1.0 + 1e-9 and totals.spent == pytest.approx(spent)
    assert totals.committed == pytest.approx(spent)  # nothing left held
    assert spent > 1.0 - 0.03  # the last refusal saw no other reservation in flight


# A worker process running products through the real pipeline and generative backend,
# against the stand-in Gemini server, all in the same run with the same cap.
_PRODUCTS = textwrap.dedent(
    """
    import json, sys
    from product_images.request import ProductRequest
    from product_images.runner import run_product
    from product_images.wiring import wire
    from product_images.settings import Settings
    from product_images.store import open_store

    job = json.loads(sys.argv[1])
    settings = Settings(**job["settings"])
    wiring = wire(settings, open_store(settings.store.url))
    print("ready", flush=True)
    sys.stdin.readline()
    results = []
    for sku, source in job["products"]:
        request = ProductRequest(sku=sku, source=source, platforms=["amazon"],
                                 run_id="catalog-run", budget_usd=job["cap"])
        result = run_product(request, wiring)
        results.append([result.sku, result.status, result.reason])
    print(json.dumps(results), flush=True)
    """
)


@pytest.fixture(scope="module")
def server():
    with StandinServer(api_key="sk-test-budget") as running:
        yield running


def _job(server, url, photos, cap):
    settings = {
        "store": url, "backend": "gemini", "gemini_api_key": server.api_key,
        "gemini_base_url": server.url, "master_side": 512, "retry_base_delay": 0.0,
        "retry_max_delay": 0.05, "processes": 0,
    }  # fmt: skip
    return [json.dumps({"settings": settings, "products": photos, "cap": cap})]


def test_two_catalog_workers_never_pass_the_run_cap(where, server, tmp_path):
    """Each product pays ~$0.27: alone, each worker could afford both of its products
    ($0.55); together they must stop at the run's $0.60."""
    store, url, env = where
    photos = []
    for n in range(4):  # different photos: the cache must not make them free
        draw_product(size=(500, 400), colour=(40 + 50 * n, 90, 150))[0].save(tmp_path / f"{n}.jpg")
        photos.append([f"P{n}", str(tmp_path / f"{n}.jpg")])
    jobs = [_job(server, url, photos[0::2], 0.60), _job(server, url, photos[1::2], 0.60)]
    runs = [json.loads(out) for out in _workers(_PRODUCTS, jobs, env)]
    spent = sum(e.cost_usd for e in Ledger(store).entries())
    totals = RunBudget(store, "catalog-run", 0.60).totals()
    assert [run[0][1] for run in runs] == ["done", "done"]  # each worker made one
    assert [r[1:] for run in runs for r in run[1:]] == [["skipped", "budget"]] * 2
    assert 0.5 < spent <= 0.60 and totals.spent == pytest.approx(spent)
    assert totals.committed == pytest.approx(spent)


def test_failed_attempts_release_what_they_did_not_spend(server, tmp_path):
    """Retried 503s and a safety block: every reservation is settled at its billed cost."""
    server.script("503", "503", "safety")
    store = LocalStore(tmp_path / "out")
    settings = Settings(**json.loads(_job(server, str(tmp_path / "out"), [], 5.0)[0])["settings"])
    draw_product(size=(500, 400))[0].save(tmp_path / "p.jpg")
    request = ProductRequest(
        sku="P", source=str(tmp_path / "p.jpg"), platforms=["amazon"], run_id="r", budget_usd=5.0
    )
    assert run_product(request, wire(settings, store)).status == "failed"
    entries = Ledger(store).entries()
    totals = RunBudget(store, "r", 5.0).totals()
    assert [e.outcome for e in entries][:3] == [
        "upstream_error",
        "upstream_error",
        "content_blocked",
    ]
    assert totals.committed == pytest.approx(totals.spent)
    assert totals.spent == pytest.approx(sum(e.cost_usd for e in entries))
