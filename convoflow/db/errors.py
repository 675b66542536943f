"""Which database errors are worth retrying."""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# Transient failures: the server is down, restarting, unreachable, or the pool is exhausted.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, PoolTimeoutError)
