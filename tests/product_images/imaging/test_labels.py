import cv2
import numpy as np
import pytest

from product_images.imaging.labels import labelled


@pytest.mark.parametrize("every", [1, 3, 50])
def test_it_is_numpys_isin(every):
    rng = np.random.default_rng(every)
    blobs = cv2.GaussianBlur(rng.random((120, 160)).astype(np.float32), (0, 0), 2) > 0.5
    count, labels = cv2.connectedComponents(blobs.astype(np.uint8), connectivity=8)
    ids = np.arange(0, count + 5, every)  # the background label and ids past the last one too
    assert np.array_equal(labelled(labels, ids), np.isin(labels, ids))


@pytest.mark.parametrize("ids", [np.array([], np.int64), np.array([-1, 99])])
def test_no_known_id_marks_nothing(ids):
    labels = np.array([[0, 1], [2, 2]], np.int32)
    assert not labelled(labels, ids).any()
