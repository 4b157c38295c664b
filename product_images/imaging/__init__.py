"""Pixel code: pure functions over Pillow images and numpy arrays. No Prefect, no I/O."""
