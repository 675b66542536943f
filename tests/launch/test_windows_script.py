"""start_services.bat: it cannot run here, so check what it would run names real modules, commands and options."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.utils.commands import command_problems
from tests.utils.processes import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "start_services.bat"
WINDOW = re.compile(r'^start "(?P<title>[^"]+)" cmd /k (?P<command>.+)$')
WINDOWS_POOLS = ("solo", "threads")


def lines() -> list[str]:
    return [line.strip() for line in SCRIPT.read_bytes().decode("ascii").split("\r\n")]


def windows() -> dict[str, list[str]]:
    """Title -> command of each `start "title" cmd /k command` line (a window of its own)."""
    found = {}
    for line in lines():
        match = WINDOW.match(line)
        if match:
            found[match["title"]] = shlex.split(match["command"], posix=False)
    return found


def test_script_has_windows_line_endings() -> None:
    data = SCRIPT.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 0


def test_worker_beat_and_flower_each_get_a_window_of_their_own() -> None:
    subcommands = sorted(argv[3] for argv in windows().values())
    assert subcommands == ["beat", "flower", "worker"]


@pytest.mark.parametrize("title", sorted(windows()))
def test_each_window_runs_a_real_celery_command(title: str) -> None:
    argv = windows()[title]
    assert argv[:3] == ["celery", "-A", "celery_app"]
    assert command_problems(argv) == [], argv


def test_the_worker_uses_a_pool_that_works_on_windows() -> None:
    [worker] = [argv for argv in windows().values() if argv[3] == "worker"]
    pools = [arg.split("=", 1)[1] for arg in worker if arg.startswith(("--pool=", "-P="))]
    assert pools and pools[0] in WINDOWS_POOLS


def test_the_database_is_migrated_before_any_window_opens() -> None:
    script = lines()
    migrate = script.index("python -m convoflow.db || exit /b 1")
    assert command_problems(["python", "-m", "convoflow.db"]) == []
    assert all(migrate < index for index, line in enumerate(script) if WINDOW.match(line))
