"""The store lock's lease: renewed while its holder lives, short once it is gone."""

import json
import signal
import subprocess
import sys
import time

from product_images.errors import StorageError
from product_images.locks import LEASE_SECONDS, store_lock
from product_images.store import LocalStore
from product_images.store.layout import lock_key

HOLD = """
import sys, time
from product_images.locks import LEASE_SECONDS, store_lock
from product_images.store import LocalStore
with store_lock(LocalStore(sys.argv[1]), "gen-x", ttl=float(sys.argv[2])):
    print("held", flush=True)
    time.sleep(120)
"""


def _taken(store: LocalStore, name: str) -> bool:
    """Whether another worker would be refused `name` right now (it waits for nobody)."""
    try:
        with store_lock(store, name, wait=0, poll=0.01):
            return False
    except StorageError:
        return True


def test_a_live_holder_keeps_its_lock_past_its_lease(tmp_path):
    store = LocalStore(tmp_path)
    with store_lock(store, "gen-x", ttl=1.2) as held:
        assert held
        time.sleep(3.0)  # two and a half leases: only renewals keep it
        assert _taken(store, "gen-x")
    assert not _taken(store, "gen-x")  # released at the end of the block


def test_a_killed_holder_blocks_others_for_one_lease_at_most(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "1.0"], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert _taken(LocalStore(tmp_path), "gen-x")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with store_lock(LocalStore(tmp_path), "gen-x", wait=30, poll=0.05) as held:
        assert held  # the dead holder's lease ran out; it was not renewed


def test_a_holder_that_lost_its_lease_leaves_the_new_one_alone(tmp_path):
    store = LocalStore(tmp_path)
    theirs = json.dumps({"owner": "other", "expires": time.time() + 60}).encode()
    with store_lock(store, "gen-x", ttl=1.2):
        store.put(lock_key("gen-x"), theirs)  # stalled past its lease, then taken over
        time.sleep(0.6)  # a renewal comes and goes: it must not write over theirs
    assert store.get(lock_key("gen-x")) == theirs


def test_the_lease_is_short_whatever_the_work_takes(tmp_path):
    # A crashed holder's lease blocks a rerun this long at most (it once was the longest
    # paid call with its retries: 960 s with the default limits).
    store = LocalStore(tmp_path)
    with store_lock(store, "gen-x"):
        lease = json.loads(store.get(lock_key("gen-x")))
    assert lease["expires"] - time.time() <= LEASE_SECONDS <= 60
