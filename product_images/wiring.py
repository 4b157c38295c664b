"""The composition root: every external system a run talks to, built from the settings in one
place and passed down.

A `Wiring` holds a run's settings, its store, its generative backends and its pixel worker
pool; `wire` is the one place that makes them. An entry point wires once per run and hands the
result to the steps (`product_images.runner`, `product_images.pipeline`): the CLI's inline
engine once for a whole catalog, a Prefect task process once per settings and store (its
process may be a Dask or Prefect worker that has nothing else to go on; `tasks/product.py`).
Nothing below reads settings to build its own connections.

What stays per process, on purpose: a backend's circuit breaker, adaptive rate and call
limiter (they describe the remote service, which every run in the process shares; see
`product_images.generative.clients`), the onnxruntime session and the spawned pixel workers
(too costly to build per run; `product_images.workers`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from product_images.backends import chosen_backend
from product_images.preload import warm_up
from product_images.settings import Settings
from product_images.store import Store, open_store
from product_images.workers import PixelPool, pixel_pool

if TYPE_CHECKING:
    from product_images.backends.generative import GenerativeBackend

__all__ = ["Wiring", "wire"]


@dataclass
class Wiring:
    """What one run talks to; see the module doc."""

    settings: Settings
    store: Store
    _backends: dict[str, GenerativeBackend | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def generative(self, override: str | None = None) -> GenerativeBackend | None:
        """The generative backend the settings (or a product's `override`) choose, made once
        per run; None when that is the local backend."""
        name = chosen_backend(self.settings, override)
        with self._lock:
            if name not in self._backends:
                self._backends[name] = _generative(self.settings, name)
            return self._backends[name]

    def pixels(self) -> PixelPool | None:
        """The worker processes pixel work runs in, or None: in the caller's thread."""
        processes = self.settings.running.processes
        return pixel_pool(processes, warm_up) if processes > 1 else None


def wire(settings: Settings, store: Store | None = None) -> Wiring:
    """A run's wiring: `store`, or the one the settings name."""
    return Wiring(settings, store or open_store(settings.store.url))


def _generative(settings: Settings, name: str) -> GenerativeBackend | None:
    if name == "local":
        return None
    # The generative stack (httpx, ledger, fidelity) loads only when a run needs it.
    from product_images.backends.generative import GenerativeBackend
    from product_images.generative.clients import checked_choice, make_generator

    choice = checked_choice(settings, name)  # a shut-down model fails here, before any call
    return GenerativeBackend(make_generator(settings, name, choice), choice)
