"""Prefect tasks: thin wrappers that open the store by URL, call one core step, return keys."""
