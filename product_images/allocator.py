"""Keep the C allocator's memory flat during a long run: few heaps, free memory handed back.

A catalog run frees as much as it allocates, but glibc keeps freed blocks in its heaps for
later reuse, and freed holes between live blocks are never given back by itself. The flow
process of a 600-product catalog run held ~55 MB that `malloc_trim` gave back at once, while
its live Python objects stayed flat (tracemalloc): that free memory is what made its RSS creep
up along the run (bench/catalog_memory.py), so the run hands it back every RELEASE_EVERY
products. glibc also gives each thread that allocates its own heap ("arena"), up to 8 per
core, and the run has dozens of threads: a trim cannot hand back what a few live blocks pin in
each of them, and a 2,000-product flow rose 38 MB over its last 750 products that way; with
at most ARENAS heaps it rose no more after its first 1,000 (bench/RESULTS.md §8, fourth pass).
Elsewhere than glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = ["ARENAS", "RELEASE_EVERY", "bound_arenas", "release_free_memory"]

#: Products between two hand-backs of the allocator's free memory in a catalog run (a few ms
#: each; in between, a flow process held up to ~55 MB of freed memory per 100 products).
RELEASE_EVERY = 25

#: glibc heaps a catalog process may have (its default: 8 per core). Threads beyond share them.
ARENAS = 2

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


@cache
def _glibc(name: str) -> Callable[..., Any] | None:
    """A function of glibc's allocator, or None (not Linux, or a libc without it, e.g. musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[..., Any] = getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (OSError, AttributeError):
        return None
    return function


def release_free_memory() -> bool:
    """Give the allocator's free memory back to the system; False where that is not possible.
    Costs a few milliseconds (it walks every heap): call it every so many products, not per
    allocation."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


def bound_arenas(arenas: int = ARENAS) -> bool:
    """Hold this process to `arenas` allocator heaps from now on; False where that is not
    possible. Call it before the process starts its threads: glibc fixes its limit once the
    ninth heap exists, and heaps made before are kept."""
    mallopt = _glibc("mallopt")
    return mallopt is not None and mallopt(M_ARENA_MAX, arenas) == 1
