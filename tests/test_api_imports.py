"""The API sends tasks by name and never touches the database, so it does not even load the database code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from convoflow.api.app import create_app
create_app()
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {NAMES})))
"""

DATABASE_PACKAGES = {"sqlalchemy", "psycopg", "pymysql", "alembic", "celery_batches"}


def test_the_api_process_loads_no_database_code() -> None:
    probe = PROBE.replace("{NAMES}", repr(DATABASE_PACKAGES))
    output = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "LLM_PROVIDER": "offline"},
    ).stdout
    assert json.loads(output.strip().splitlines()[-1]) == []
