"""Generative backends' rate and concurrency limits across workers: Prefect global
concurrency limits, created by the project and used strictly (a missing one is an error).

Per backend, two limits (names from `limit_names`):

* `<backend>-requests`: a concurrency limit of `<backend>_concurrency` slots, one held
  around each HTTP attempt (within a task, lent from the process's `SlotPool`);
* `<backend>-rpm`: a rate limit of `burst_of(<backend>_rpm)` slots decaying at rpm / 60
  a second, one spent per attempt (within a task, taken a few at a time: `RateTokens`).

`ensure_concurrency_limits` creates or updates them (called by `serve` and by the flows at
start); `prefect_call_limits` routes the product's calls through them while a task runs
against a Prefect API, and leaves the in-process limiter in charge otherwise.

The adaptive rate (429s lower it, successes raise it: product_images/generative/throttle.py)
is shared the same way: while tasks run against a Prefect API, a process's new rate becomes
the decay of `<backend>-rpm` (`RatePublisher`), so every worker slows down on one worker's
429s; the flows' `ensure_concurrency_limits` sets it back to the configured rpm at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import get_current_settings

from product_images.errors import LimitsUnavailableError, SettingsError
from product_images.generative.call_limiter import CallLimiter, burst_of, cluster_limits
from product_images.settings import Settings
from product_images.tasks.slot_pool import RateTokens, SlotPool
from product_images.wiring import Wiring

__all__ = [
    "PrefectCallLimiter",
    "RatePublisher",
    "ensure_concurrency_limits",
    "limit_names",
    "prefect_api_configured",
    "prefect_call_limits",
]

#: Backends with limits; their settings are <backend>_rpm and <backend>_concurrency.
BACKENDS = ("gemini", "openai")

log = logging.getLogger(__name__)


def limit_names(backend: str) -> tuple[str, str]:
    """(concurrency limit, rate limit) names of a backend."""
    return f"{backend}-requests", f"{backend}-rpm"


def prefect_api_configured() -> bool:
    """Whether a Prefect API URL is set (environment or profile)."""
    return bool(get_current_settings().api.url)


class PrefectCallLimiter:
    """Slots from the backend's Prefect global limits, shared by every worker of the server.

    With `local_slots` (the process's most at once, normally the limit's size), concurrency
    slots come from this process's `SlotPool`: taken from the server once and lent to one
    attempt after another while attempts keep coming (see tasks/slot_pool.py for why).
    Without, each attempt takes and releases its own slot on the server.
    """

    def __init__(self, backend: str, local_slots: int | None = None, rpm: float = 0.0) -> None:
        self.backend = backend
        self.requests, self.rpm = limit_names(backend)
        self.pool = _pool(self.requests, local_slots) if local_slots else None
        self.tokens = _tokens(self.rpm, _rate_batch(rpm, local_slots)) if local_slots else None

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A concurrency slot, then a rate slot; SettingsError when a limit does not exist,
        LimitsUnavailableError (the product is deferred) when the server fails to answer."""
        try:
            with self.pool.lend() if self.pool else _server_slot(self.requests):
                if self.tokens:
                    self.tokens.spend()
                else:
                    rate_limit(self.rpm, strict=True)
                yield
        except ConcurrencySlotAcquisitionError as error:
            raise self._refusal(error) from error

    def _refusal(self, error: ConcurrencySlotAcquisitionError) -> Exception:
        if "must be created" in str(error):  # Prefect's words for a missing limit
            return SettingsError(
                f"Prefect global concurrency limits {self.requests!r} and {self.rpm!r} are "
                f"needed for {self.backend} calls: `product-images serve` and the flows "
                "create them (product_images.tasks.global_limits.ensure_concurrency_limits) "
                f"({error})"
            )
        # A busy server (SQLite locked: 503) says nothing about the limits or the product.
        return LimitsUnavailableError(f"{self.backend}: Prefect limits unavailable ({error})")


def _server_slot(name: str) -> AbstractContextManager[object]:
    # A slow generation must not be killed by one failed lease renewal.
    return concurrency(name, strict=True, raise_on_lease_renewal_failure=False)


_POOLS: dict[tuple[str, int], SlotPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(name: str, slots: int) -> SlotPool:
    """The process's pool of slots of limit `name` (one per limit and size)."""
    with _POOLS_LOCK:
        if (name, slots) not in _POOLS:
            _POOLS[(name, slots)] = SlotPool(lambda: _server_slot(name), slots)
        return _POOLS[(name, slots)]


_TOKENS: dict[tuple[str, int], RateTokens] = {}


def _rate_batch(rpm: float, slots: int | None) -> int:
    """Rate slots taken per server call: a quarter second's worth, at most a quarter of the
    concurrency slots (one a call at the default 300 rpm)."""
    return max(1, min(round(rpm / 60 / 4), (slots or 1) // 4))


def _tokens(name: str, batch: int) -> RateTokens:
    """The process's saved rate slots of limit `name` (one per limit and batch size)."""
    with _POOLS_LOCK:
        if (name, batch) not in _TOKENS:
            take = partial(_server_rate, name)
            _TOKENS[(name, batch)] = RateTokens(take, batch)
        return _TOKENS[(name, batch)]


def _server_rate(name: str, slots: int) -> None:
    rate_limit(name, occupy=slots, strict=True)


def _limits(settings: Settings) -> dict[str, tuple[int, float]]:
    """Name -> (slots, decay per second) of every limit the settings ask for."""
    wanted: dict[str, tuple[int, float]] = {}
    for backend in BACKENDS:
        rpm: float = getattr(settings.limits, f"{backend}_rpm")
        requests, per_minute = limit_names(backend)
        wanted[requests] = (getattr(settings.limits, f"{backend}_concurrency"), 0.0)
        wanted[per_minute] = (burst_of(rpm), rpm / 60.0)
    return wanted


def _upsert(client: SyncPrefectClient, name: str, slots: int, decay: float) -> None:
    try:
        current = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        create = GlobalConcurrencyLimitCreate(name=name, limit=slots, slot_decay_per_second=decay)
        try:
            client.create_global_concurrency_limit(create)
            return
        except ObjectAlreadyExists:  # another worker created it meanwhile: update it below
            current = client.read_global_concurrency_limit_by_name(name)
    if current.limit != slots or (current.slot_decay_per_second or 0.0) != decay:
        update = GlobalConcurrencyLimitUpdate(limit=slots, slot_decay_per_second=decay)
        client.update_global_concurrency_limit(name, update)


def ensure_concurrency_limits(settings: Settings) -> list[str]:
    """Create (or bring to the settings' values) every backend's limits; their names.
    Nothing (an empty list) without a Prefect API: the limits are then per process."""
    if not prefect_api_configured():
        return []
    wanted = _limits(settings)
    with get_client(sync_client=True) as client:
        for name, (slots, decay) in wanted.items():
            _upsert(client, name, slots, decay)
    return list(wanted)


class RatePublisher:
    """Publishes a process's adaptive rate (requests a second) as the decay of the backend's
    Prefect rate limit, at most once every `every` seconds: the server's database takes one
    writer at a time, and a write per 429 or per success would slow every worker's slots."""

    def __init__(
        self,
        name: str,
        ceiling: float,
        every: float = 1.0,
        update: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.ceiling, self.every = name, ceiling, every
        self._update = update or _set_decay
        self._clock = clock
        self._lock = threading.Lock()
        self._published = ceiling
        self._at = float("-inf")

    def __call__(self, rate: float) -> None:
        with self._lock:
            now = self._clock()
            if now - self._at < self.every or rate == self._published:
                return
            self._published, self._at = rate, now
        try:
            self._update(self.name, rate)
        except Exception as error:  # the call it followed succeeded or failed on its own
            log.warning("could not publish the adaptive rate to %s: %s", self.name, error)


def _set_decay(name: str, rate: float) -> None:
    with get_client(sync_client=True) as client:
        update = GlobalConcurrencyLimitUpdate(slot_decay_per_second=rate)
        client.update_global_concurrency_limit(name, update)


_PUBLISHERS: dict[tuple[str, float], RatePublisher] = {}


def _share_adaptive_rate(wiring: Wiring) -> None:
    """Publish the configured backend's adaptive rate to its Prefect rate limit."""
    settings = wiring.settings
    backend = wiring.generative() if settings.limits.adaptive_rate else None
    if backend is None:
        return
    name = backend.name
    ceiling = getattr(settings.limits, f"{name}_rpm") / 60.0
    with _POOLS_LOCK:
        key = (limit_names(name)[1], ceiling)
        publisher = _PUBLISHERS.setdefault(key, RatePublisher(key[0], ceiling))
    backend.generator.share_rate(publisher)


def prefect_call_limits(wiring: Wiring) -> AbstractContextManager[None]:
    """While the block runs, generative calls in this process take Prefect's global limits
    when a Prefect API is configured (at most `<backend>_concurrency` of them at once, from
    the process's pools) and publish the adaptive rate to them; otherwise nothing changes
    (in-process limits)."""
    if not prefect_api_configured():
        return nullcontext()
    chosen = wiring.settings
    _share_adaptive_rate(wiring)
    sizes = {b: getattr(chosen.limits, f"{b}_concurrency") for b in BACKENDS}
    rates = {b: getattr(chosen.limits, f"{b}_rpm") for b in BACKENDS}
    return _pooled_limits(
        lambda backend: PrefectCallLimiter(backend, sizes.get(backend), rates.get(backend, 0.0))
    )


_ACTIVE = [0]  # blocks of prefect_call_limits running in this process


@contextmanager
def _pooled_limits(factory: Callable[[str], CallLimiter]) -> Iterator[None]:
    """`cluster_limits(factory)`; the last block to end gives the pools' slots back."""
    with _POOLS_LOCK:
        _ACTIVE[0] += 1
    try:
        with cluster_limits(factory):
            yield
    finally:
        with _POOLS_LOCK:
            _ACTIVE[0] -= 1
            idle = list(_POOLS.values()) if not _ACTIVE[0] else []
        for pool in idle:
            pool.release_idle()
