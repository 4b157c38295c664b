"""Keeping secrets (API keys, proxy passwords) out of every message, repr and log line."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from product_images.errors import SettingsError

__all__ = ["Scrubber", "clean_api_key", "proxy_password"]


class Scrubber:
    """Replaces secrets (the API key in its plain and URL-encoded forms, a proxy password)
    with '***' in any text built from server answers or httpx errors."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:  # a 1-3 char "secret" would mangle every text
                forms.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first, so a secret containing another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        result = str(text)
        for form in self._forms:
            result = result.replace(form, "***")
        return result


def clean_api_key(api_key: str | SecretStr | None, setting: str) -> str:
    """The key as a plain string, stripped; SettingsError (never naming the key's value) when it
    is empty or holds characters no HTTP header can carry."""
    key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    key = (key or "").strip()
    if not key:
        raise SettingsError(f"the API key is empty: set {setting}")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise SettingsError(
            f"the API key in {setting} contains spaces, control or non-ASCII characters"
        )
    return key


def proxy_password(proxy: str | None) -> str | None:
    """The password of a proxy URL (http://user:pass@host:port), to scrub it."""
    if not proxy:
        return None
    try:
        return urlsplit(proxy).password
    except ValueError:
        return None
