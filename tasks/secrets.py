"""API keys from Prefect Secret blocks, for workers that keep no keys in their environment.

The core reads keys from Settings only; this is the one place that fills them in from blocks
(`gemini_api_key_block`, `openai_api_key_block`) when the environment has none.
"""

from __future__ import annotations

import threading
from typing import cast

from prefect.blocks.system import Secret
from pydantic import SecretStr

from product_images.errors import SettingsError
from product_images.settings import Settings, get_settings

__all__ = ["resolved_settings", "with_block_secrets"]

_LOCK = threading.Lock()
_LAST: list[Settings] = []  # [settings read, settings resolved]: blocks are read once
_KEYS = {"gemini_api_key": "gemini_api_key_block", "openai_api_key": "openai_api_key_block"}


def with_block_secrets(settings: Settings) -> Settings:
    """`settings` with each unset API key read from its Secret block, when one is named."""
    updates = {
        key: _block_value(block)
        for key, setting in _KEYS.items()
        if getattr(settings.generation, key) is None
        and (block := getattr(settings.generation, setting))
    }
    return settings.model_copy(update=updates) if updates else settings


def resolved_settings() -> Settings:
    """The process's settings with block secrets filled in (blocks are read once)."""
    settings = get_settings()
    with _LOCK:
        if _LAST and _LAST[0] is settings:
            return _LAST[1]
    resolved = with_block_secrets(settings)
    with _LOCK:
        _LAST[:] = [settings, resolved]
    return resolved


def _block_value(name: str) -> SecretStr:
    try:
        block = cast(Secret[str], Secret.load(name))  # sync here: we are not in a coroutine
        value = block.get()
    except ValueError as error:  # Prefect's "Unable to find block document named ..."
        raise SettingsError(f"no Prefect Secret block named {name!r}: {error}") from None
    return SecretStr(str(value))
