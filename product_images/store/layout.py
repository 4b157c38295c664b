"""Every key the project writes in a store, in one place: one function per kind of key, and
`classify` to tell what a key is.

Products live under their SKU (SKUs start with a letter or digit):

    <sku>/manifest.json                      the publish point, written last
    <sku>/<folder>/<name>.<sha12>.<ext>      masters and outputs, named by their content
    <sku>/<platform>/<slot>.<ext>            the stable copy of a published output

Bookkeeping lives under `_`-prefixed folders, which no SKU can start with:

    _cache/generated/<k[:2]>/<k>.img|.json   generated images (GenerationCache)
    _ledger/<day>/<time>-<id>.json           one record per paid-API attempt
    _budget/<run>/<seq>.json, head.json      a run's reservations and settlements
    _locks/<name>                            lease locks
    _status/<sku>.json                       each product's last outcome
    _state/...                               upload cursor, processed markers, refresh catalog
    _thumbs/<sku>/<name>-<sha12>.jpg         UI thumbnails
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

__all__ = [
    "BOOKKEEPING",
    "BUDGET",
    "CACHE",
    "LEDGER",
    "LOCKS",
    "STATE",
    "STATUS",
    "THUMBS",
    "KeyKind",
    "budget_entry_key",
    "budget_head_key",
    "budget_prefix",
    "cache_keys",
    "classify",
    "is_bookkeeping",
    "ledger_key",
    "lock_key",
    "manifest_key",
    "master_key",
    "output_key",
    "processed_key",
    "sku_of",
    "stable_key",
    "status_key",
    "thumbnail_key",
    "versioned_key",
]

CACHE = "_cache/generated/"
LEDGER = "_ledger/"
BUDGET = "_budget/"
LOCKS = "_locks/"
STATUS = "_status/"
STATE = "_state/"
THUMBS = "_thumbs/"
CURSOR_KEY = f"{STATE}upload-cursor.json"
PROCESSED = f"{STATE}processed/"
REFRESH_CATALOG_KEY = f"{STATE}refresh-catalog.json"

KeyKind = Literal[
    "manifest",
    "versioned",
    "stable",
    "cache",
    "ledger",
    "budget",
    "lock",
    "status",
    "state",
    "thumbnail",
    "other",
]

#: Bookkeeping folder -> kind; `gc` and `verify` never treat these as products.
BOOKKEEPING: dict[str, KeyKind] = {
    CACHE: "cache",
    LEDGER: "ledger",
    BUDGET: "budget",
    LOCKS: "lock",
    STATUS: "status",
    STATE: "state",
    THUMBS: "thumbnail",
}

__all__ += ["CURSOR_KEY", "PROCESSED", "REFRESH_CATALOG_KEY"]

# Outputs and masters are stored under their content's checksum (`main.<sha12>.jpg`), so a
# run never overwrites what a published manifest lists: the manifest, written last, switches
# readers from one complete set to the next in a single atomic put.
_VERSIONED = re.compile(r"^(?P<stem>.+)\.(?P<sha>[0-9a-f]{12})\.(?P<ext>[A-Za-z0-9]+)$")


def manifest_key(sku: str) -> str:
    """Where a product's manifest lives, relative to the store root."""
    return f"{sku}/manifest.json"


def versioned_key(stable: str, sha256: str) -> str:
    """`SKU/amazon/main.jpg` + checksum -> `SKU/amazon/main.<sha12>.jpg`."""
    stem, dot, ext = stable.rpartition(".")
    if not dot or "/" in ext:
        raise ValueError(f"a versioned key needs an extension: {stable!r}")
    return f"{stem}.{sha256[:12]}.{ext}"


def stable_key(key: str) -> str | None:
    """The fixed key a versioned key is published under; None for any other key."""
    match = _VERSIONED.match(key)
    return f"{match['stem']}.{match['ext']}" if match else None


def master_key(sku: str, name: str, sha256: str) -> str:
    """A master (or the cut-out) of a product, named by its content."""
    return versioned_key(f"{sku}/masters/{name}.png", sha256)


def output_key(sku: str, platform: str, file_name: str, sha256: str) -> str:
    """One platform slot's output (`file_name` = `<slot>.<ext>`), named by its content."""
    return versioned_key(f"{sku}/{platform}/{file_name}", sha256)


def cache_keys(key: str) -> tuple[str, str]:
    """The image and metadata objects of one generation-cache entry."""
    base = f"{CACHE}{key[:2]}/{key}"
    return f"{base}.img", f"{base}.json"


def ledger_key(time: datetime, unique: str) -> str:
    """One ledger entry: grouped by day, ordered by time within it."""
    return f"{LEDGER}{time:%Y-%m-%d}/{time:%Y-%m-%dT%H%M%S.%f}-{unique}.json"


def budget_prefix(run_id: str) -> str:
    """Every reservation and settlement of one run."""
    return f"{BUDGET}{run_id}/"


def budget_entry_key(run_id: str, seq: int) -> str:
    """The `seq`-th entry of a run's budget log (zero-padded: listed in order)."""
    return f"{budget_prefix(run_id)}{seq:010d}.json"


def budget_head_key(run_id: str) -> str:
    """A hint of the newest entry's number in a run's budget log (may lag; never ahead)."""
    return f"{budget_prefix(run_id)}head.json"


def lock_key(name: str) -> str:
    """A lease lock."""
    return f"{LOCKS}{name}"


def status_key(sku: str) -> str:
    """A product's last outcome."""
    return f"{STATUS}{sku}.json"


def processed_key(idempotency_key: str) -> str:
    """Where the marker of an upload's idempotency key lives."""
    return f"{PROCESSED}{idempotency_key}"


def thumbnail_key(sku: str, name: str, sha256: str) -> str:
    """A UI thumbnail; it changes when its content does."""
    return f"{THUMBS}{sku}/{name}-{sha256[:12]}.jpg"


def is_bookkeeping(key: str) -> bool:
    """Whether the key is one of the pipeline's own records rather than a product's object."""
    return key.startswith("_")


def sku_of(key: str) -> str | None:
    """The SKU a product key (manifest, versioned or stable object) belongs to, else None."""
    return key.split("/", 1)[0] if classify(key) in ("manifest", "versioned", "stable") else None


def classify(key: str) -> KeyKind:
    """What a key holds; 'other' for anything the project does not write (source photos...)."""
    for prefix, kind in BOOKKEEPING.items():
        if key.startswith(prefix):
            return kind
    if is_bookkeeping(key):
        return "other"
    if key.count("/") == 1 and key.endswith("/manifest.json"):
        return "manifest"
    if key.count("/") == 2:
        return "versioned" if stable_key(key) else "stable"
    return "other"
