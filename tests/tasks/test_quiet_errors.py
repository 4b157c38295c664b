import logging
import sys

import pytest

from product_images.errors import MissingSourceError, ProductError
from product_images.tasks.quiet_errors import (
    RUN_LOGGERS,
    ProductErrorTracebacks,
    quiet_product_errors,
)


def _record(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord(
        "prefect.task_runs", logging.ERROR, __file__, 1, "failed: %r", (error,), info
    )


@pytest.mark.parametrize(
    ("error", "traceback_kept"),
    [
        (MissingSourceError("photo.jpg", "no such file"), False),
        (ProductError("bad input"), False),
        (ValueError("a bug"), True),
        (KeyError("a bug"), True),
    ],
)
def test_only_product_errors_lose_their_traceback(error, traceback_kept):
    record = _record(error)
    assert ProductErrorTracebacks().filter(record) is True  # never drops the line itself
    assert (record.exc_info is not None) is traceback_kept
    assert "failed:" in record.getMessage()


def test_installing_twice_adds_one_filter():
    quiet_product_errors()
    quiet_product_errors()
    for name in RUN_LOGGERS:
        found = [
            f for f in logging.getLogger(name).filters if isinstance(f, ProductErrorTracebacks)
        ]
        assert len(found) == 1
