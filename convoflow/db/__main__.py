"""`python -m convoflow.db`: bring the configured database to the latest schema (safe to run again)."""

from __future__ import annotations

import sys

from sqlalchemy.engine import make_url

from convoflow.config import get_settings
from convoflow.db.migrate import upgrade_to_head


def main() -> int:
    url = get_settings().sqlalchemy_url
    before, after = upgrade_to_head(url)
    shown = make_url(url).render_as_string(hide_password=True)
    print(f"{shown}: schema {before or '(empty)'} -> {after}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
