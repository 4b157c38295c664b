"""Hand the C allocator's free memory back to the operating system during a long run.

A catalog run frees as much as it allocates, but glibc keeps freed blocks in its heaps (one
per thread that allocated, and the run has dozens of threads) for later reuse, and freed
holes between live blocks are never given back by itself. The flow process of a 600-product
catalog run held ~55 MB that `malloc_trim` gave back at once, while its live Python objects
stayed flat (tracemalloc): that free memory is what made its RSS creep up along the run
(bench/catalog_memory.py). Elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache

__all__ = ["RELEASE_EVERY", "release_free_memory"]

#: Products between two hand-backs of the allocator's free memory in a catalog run (a few ms
#: each; in between, a flow process held up to ~55 MB of freed memory per 100 products).
RELEASE_EVERY = 25


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (not Linux, or a libc without it such as musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> bool:
    """Give the allocator's free memory back to the system; False where that is not possible.
    Costs a few milliseconds (it walks every heap): call it every so many products, not per
    allocation."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
