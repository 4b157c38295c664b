"""The allocator: freed heap memory goes back to the system; threads share a bounded number
of heaps."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from product_images.allocator import bound_arenas, release_free_memory

BLOCK = 64 * 1024  # under glibc's mmap threshold: from the heap, kept there once freed
BLOCKS = 1600  # 100 MB

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")

# A fresh process: 12 threads allocate at once (from the heap, under the mmap threshold) while
# all alive, then glibc's own report (malloc_info) counts the heaps in use.
COUNT_HEAPS = """
import ctypes, ctypes.util, sys, tempfile, threading
from product_images.allocator import bound_arenas
if sys.argv[1] != "unbound":
    assert bound_arenas(int(sys.argv[1]))
barrier = threading.Barrier(13)  # and this thread
def work():
    held = [bytearray(4096) for _ in range(200)]
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for thread in threads:
    thread.start()
barrier.wait()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(report.name).read().count("<heap nr="))
barrier.wait()
"""


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _heaps(arenas: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", COUNT_HEAPS, arenas], capture_output=True, text=True, check=True
    )
    return int(run.stdout)


@glibc
def test_freed_heap_memory_goes_back_to_the_system() -> None:
    held = [bytes(BLOCK) for _ in range(BLOCKS)]
    pin = bytes(BLOCK)  # a live block above the freed ones: the heap cannot just shrink
    del held
    before = _rss()

    assert release_free_memory() is True
    assert before - _rss() > BLOCKS * BLOCK // 2
    assert len(pin) == BLOCK


@glibc
def test_bounding_the_heaps_is_accepted() -> None:
    assert bound_arenas() is True


@glibc
@pytest.mark.parametrize("arenas", [1, 2, 4])
def test_threads_share_the_bounded_heaps(arenas: int) -> None:
    assert _heaps("unbound") > 4  # glibc's default: a heap per thread, up to 8 per core
    assert _heaps(str(arenas)) == arenas
