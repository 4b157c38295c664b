"""Find and remove what crashed or superseded runs left behind.

Masters and outputs are stored under checksummed keys (`SKU/amazon/main.<sha12>.jpg`) and the
manifest, written last, lists the ones that are published. Any checksummed key that no
manifest lists is an orphan: from a run that died before its manifest, or from an earlier run
that a newer manifest replaced. Only keys shaped `SKU/folder/name.<sha12>.ext` whose bytes
really hash to that checksum are ever candidates, so source photos (even one with a
hash-like name), the stable copies, manifests and the bookkeeping (cache, ledger, budget,
status, locks, state, thumbnails) are never touched: `store.layout.classify` tells them
apart. Young orphans are left alone: they may belong to a run still in progress.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from product_images.errors import ObjectNotFoundError
from product_images.manifest import Manifest
from product_images.store import ObjectInfo, Store
from product_images.store.layout import classify, manifest_key

__all__ = ["GcReport", "collect_garbage", "find_orphans", "verify_published"]


@dataclass
class GcReport:
    """What a garbage collection found (and removed, unless it was a dry run)."""

    orphans: list[ObjectInfo] = field(default_factory=list)
    kept_young: int = 0
    unreadable_manifests: list[str] = field(default_factory=list)
    removed: bool = False

    @property
    def bytes(self) -> int:
        """Total size of the orphans."""
        return sum(info.size for info in self.orphans)


def find_orphans(store: Store, grace_seconds: float, now: datetime | None = None) -> GcReport:
    """Every checksummed object that its product's manifest does not list."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=grace_seconds)
    report = GcReport()
    listed: dict[str, set[str] | None] = {}
    for info in _candidates(store):
        sku = info.key.split("/", 1)[0]
        if sku not in listed:
            listed[sku] = _published(store, sku, report)
        keys = listed[sku]
        if keys is None or info.key in keys:
            continue
        if info.last_modified > cutoff:
            report.kept_young += 1
        elif _named_by_content(store, info.key):
            report.orphans.append(info)
    return report


def collect_garbage(store: Store, grace_seconds: float, apply: bool = False) -> GcReport:
    """`find_orphans`, then delete them when `apply` (a dry run otherwise)."""
    report = find_orphans(store, grace_seconds)
    if apply:
        for info in report.orphans:
            store.delete(info.key)
        report.removed = True
    return report


def verify_published(store: Store) -> list[str]:
    """Problems with what is published: a manifest that cannot be read, or that lists an
    object which is missing or whose checksum differs. Empty when every reader is safe."""
    problems = []
    for key in store.list():
        if classify(key) != "manifest":
            continue
        try:
            manifest = Manifest.model_validate_json(store.get(key))
        except (ValidationError, ObjectNotFoundError) as error:
            problems.append(f"{key}: unreadable ({type(error).__name__})")
            continue
        problems += [f"{key}: {p}" for p in _listed_problems(store, manifest)]
    return problems


def _listed_problems(store: Store, manifest: Manifest) -> list[str]:
    problems = []
    for key, sha256 in manifest.published_keys().items():
        try:
            if hashlib.sha256(store.get(key)).hexdigest() != sha256:
                problems.append(f"{key} does not match its checksum")
        except ObjectNotFoundError:
            problems.append(f"{key} is missing")
    return problems


def _candidates(store: Store) -> Iterator[ObjectInfo]:
    for info in store.list_info():
        if classify(info.key) == "versioned":
            yield info


def _named_by_content(store: Store, key: str) -> bool:
    """Whether the checksum in the name is the object's own: then we wrote it."""
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        return False
    return hashlib.sha256(data).hexdigest()[:12] == key.rsplit(".", 2)[1]


def _published(store: Store, sku: str, report: GcReport) -> set[str] | None:
    """The keys the SKU's manifest lists; None (touch nothing) when it cannot be read."""
    key = manifest_key(sku)
    try:
        manifest = Manifest.model_validate_json(store.get(key))
    except ObjectNotFoundError:
        return set()
    except ValidationError:
        report.unreadable_manifests.append(key)
        return None
    return set(manifest.published_keys())
