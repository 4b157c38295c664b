import pytest

from product_images.cli.engine import alone
from product_images.cores import usable_cores
from product_images.settings import Settings


@pytest.mark.parametrize("asked", [1, 2, 32])
def test_one_product_alone_has_no_workers_and_the_model_on_every_core(asked):
    cores = min(usable_cores(), 32)
    settings = alone(Settings(processes=2, segmenter_threads=asked, concurrency=3))
    assert settings.running.processes == 0
    assert settings.imaging.segmenter_threads == max(asked, cores)
    assert settings.running.concurrency == 3  # the rest as it was
