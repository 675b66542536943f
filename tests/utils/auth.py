"""API keys the tests configure (API_KEYS) and the headers that present them."""

from __future__ import annotations

KEYS = {
    "alice": "alice-3c1f0e8a9b7d4e2f",
    "bob": "bob-9d8e7f6a5b4c3d2e1f",
    "fuzzer": "fuzzer-5e4d3c2b1a0f9e8d",
}

# Keys being rotated out (API_KEYS_PREVIOUS): still accepted, as the same name.
PREVIOUS_KEYS = {"alice": "alice-old-7a6b5c4d3e2f1a0b"}


def api_keys_setting(keys: dict[str, str] = KEYS) -> str:
    """An API_KEYS value: `name:key,name:key`."""
    return ",".join(f"{name}:{key}" for name, key in keys.items())


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}
