"""API keys: which caller a Bearer token belongs to, decided in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class ApiKeyring:
    """The keys of API_KEYS (and API_KEYS_PREVIOUS), kept as digests; an empty keyring means the API is open."""

    def __init__(self, keys: Mapping[str, str], previous: Mapping[str, str] | None = None) -> None:
        self._digests = [(name, _digest(key), False) for name, key in keys.items()]
        self._digests += [(name, _digest(key), True) for name, key in (previous or {}).items()]
        self._warned_previous: set[str] = set()

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def owner_of(self, presented: str) -> str | None:
        """The name the key `presented` belongs to, or None.

        Digests have one length, and every key is compared (no early exit), so neither the length
        of a key nor how much of it matched shows in the response time.
        """
        presented_digest = _digest(presented)
        owner: str | None = None
        via_previous = False
        for name, digest, previous in self._digests:
            if hmac.compare_digest(presented_digest, digest) and owner is None:
                owner, via_previous = name, previous
        if owner is not None and via_previous and owner not in self._warned_previous:
            self._warned_previous.add(owner)
            logger.warning("%s still uses its key from API_KEYS_PREVIOUS (logged once per process)", owner)
        return owner
