"""product-images: product photos in, marketplace-ready images out.

This package is the Prefect-free core: loading, cut-out, masters, rendering, checks, storage,
specs and settings. `tasks/` wraps its steps for Prefect and `flows/` orchestrates them.
"""

__version__ = "0.1.0"
