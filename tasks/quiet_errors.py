"""One clear line for a product that failed on purpose, not a traceback per engine layer.

A ProductError (a missing or corrupt photo, an unsafe SKU...) is an expected outcome with a
message that says what to fix. Prefect's task and flow engines log every exception with its
traceback (~40 lines each); for these errors the traceback shows only our own call chain, so
the filter drops it and keeps Prefect's one-line message. Any other exception keeps its
traceback: that one is a bug to read.
"""

from __future__ import annotations

import logging

from product_images.errors import ProductError

__all__ = ["RUN_LOGGERS", "ProductErrorTracebacks", "quiet_product_errors"]

#: The loggers Prefect's engines log run failures to.
RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


class ProductErrorTracebacks(logging.Filter):
    """Strips the traceback from records about a ProductError; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ProductError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_product_errors() -> None:
    """Install the filter on Prefect's run loggers (once; calling again does nothing)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ProductErrorTracebacks) for f in logger.filters):
            logger.addFilter(ProductErrorTracebacks())
