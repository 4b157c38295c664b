"""Helpers for tests, demos and benchmarks (no Prefect imports)."""

__all__: list[str] = []
