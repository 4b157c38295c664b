"""A lease lock kept in the store, so workers on different machines can agree on who makes a
paid generation: the first `put_if_absent` of the lock object wins (S3 conditional write,
`If-None-Match: *`; O_EXCL on a local folder). A lease expires, so a crashed worker cannot
block others for longer than its TTL.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from product_images.errors import ObjectNotFoundError, StorageError
from product_images.store import Store
from product_images.store.layout import lock_key

__all__ = ["store_lock"]


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
    ttl: float = 300.0,
    wait: float = 600.0,
    poll: float = 0.5,
    done: Callable[[], bool] = lambda: False,
) -> Iterator[bool]:
    """Hold the lock `name` while the block runs. Yields True when this worker holds it, or
    False when `done()` became true while waiting (another worker did the work)."""
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
    try:
        yield True
    finally:
        store.delete(key)
