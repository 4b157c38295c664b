"""A lease lock kept in the store, so workers on different machines can agree on who makes a
paid generation: the first `put_if_absent` of the lock object wins (S3 conditional write,
`If-None-Match: *`; O_EXCL on a local folder).

The lease is short and its holder renews it while it works, so a crashed (SIGKILLed) holder
blocks the others for one lease at most, however long the work may take: a lease as long as
the longest paid call (15+ minutes with the default timeouts and retries) made a catalog rerun
after a crash wait that long for each product that was in flight.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from product_images.errors import ObjectNotFoundError, StorageError
from product_images.store import Store
from product_images.store.layout import lock_key

__all__ = ["LEASE_SECONDS", "store_lock"]

#: How long a lock outlives its holder's last renewal (renewed every third of it).
LEASE_SECONDS = 30.0


def _lease(owner: str, ttl: float) -> bytes:
    return json.dumps({"owner": owner, "expires": time.time() + ttl}).encode()


def _expired(store: Store, key: str) -> bool:
    try:
        lease = json.loads(store.get(key))
    except ObjectNotFoundError:
        return True
    except (ValueError, StorageError):
        return False
    return float(lease.get("expires", 0)) < time.time()


@contextmanager
def store_lock(
    store: Store,
    name: str,
    ttl: float = LEASE_SECONDS,
    wait: float = 600.0,
    poll: float = 0.5,
    done: Callable[[], bool] = lambda: False,
) -> Iterator[bool]:
    """Hold the lock `name` while the block runs, its lease of `ttl` seconds renewed until the
    block ends. Yields True when this worker holds it, or False when `done()` became true while
    waiting (another worker did the work). Waits `wait` seconds at most for a live holder."""
    key, owner = lock_key(name), uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while not store.put_if_absent(key, _lease(owner, ttl), "application/json"):
        if done():
            yield False
            return
        if _expired(store, key):
            store.delete(key)  # a crashed holder's lease; the next put_if_absent decides
            continue
        if time.monotonic() > deadline:
            raise StorageError(f"timed out waiting for lock {name!r}")
        time.sleep(poll)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(store, key, owner, ttl, stop), daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        if _owner(store, key) == owner:  # not a lease taken over while this one was stalled
            store.delete(key)


def _renew(store: Store, key: str, owner: str, ttl: float, stop: threading.Event) -> None:
    """Extend the lease every third of `ttl` while it is still ours (a holder stalled past its
    lease may have lost it: then it leaves the new holder's lease alone)."""
    while not stop.wait(ttl / 3):
        try:
            if _owner(store, key) != owner:
                return
            store.put(key, _lease(owner, ttl), "application/json")
        except StorageError:
            continue  # the store's hiccup: try again at the next renewal


def _owner(store: Store, key: str) -> str | None:
    try:
        return str(json.loads(store.get(key)).get("owner"))
    except (ObjectNotFoundError, ValueError):
        return None
