import os

from product_images.cores import usable_cores
from product_images.settings import Settings


def test_usable_cores_follow_the_affinity():
    assert usable_cores() == len(os.sched_getaffinity(0)) >= 1


def test_worker_processes_default_to_the_usable_cores():
    assert Settings().running.processes == min(usable_cores(), 64)
