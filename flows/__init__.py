"""Prefect flows: they only orchestrate tasks; no pixel code lives here."""
