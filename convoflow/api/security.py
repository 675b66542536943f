"""API keys: which caller a Bearer token belongs to, decided in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class ApiKeyring:
    """The keys of API_KEYS, kept as digests; an empty keyring means the API is open."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._digests = [(name, _digest(key)) for name, key in keys.items()]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def owner_of(self, presented: str) -> str | None:
        """The name of the key `presented` is, or None.

        Digests have one length, and every key is compared (no early exit), so neither the length
        of a key nor how much of it matched shows in the response time.
        """
        presented_digest = _digest(presented)
        owner: str | None = None
        for name, digest in self._digests:
            if hmac.compare_digest(presented_digest, digest) and owner is None:
                owner = name
        return owner
