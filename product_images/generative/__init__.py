"""Generative image backends (Gemini, OpenAI-compatible) and what makes them cheap and safe:
prompt templates, a content-addressed cache, a cost ledger and a run budget."""
