"""release_free_memory: freed blocks held by glibc go back to the system."""

from __future__ import annotations

import os
import sys

import pytest

from product_images.allocator import release_free_memory

BLOCK = 64 * 1024  # under glibc's mmap threshold: from the heap, kept there once freed
BLOCKS = 1600  # 100 MB


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_memory_goes_back_to_the_system() -> None:
    held = [bytes(BLOCK) for _ in range(BLOCKS)]
    pin = bytes(BLOCK)  # a live block above the freed ones: the heap cannot just shrink
    del held
    before = _rss()

    assert release_free_memory() is True
    assert before - _rss() > BLOCKS * BLOCK // 2
    assert len(pin) == BLOCK
