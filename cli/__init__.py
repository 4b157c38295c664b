"""The `product-images` command: a thin face over the flows and the core."""
