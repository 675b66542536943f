"""The Makefile's targets are aliases of dev.py's commands."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.utils.processes import PROJECT_ROOT

EXPECTED = {
    "run": ["python3", "dev.py", "up", "--extra"],
    "test": ["python3", "dev.py", "test", "--extra"],
    "lint": ["python3", "dev.py", "lint"],
    "bench": ["python3", "dev.py", "bench", "--extra"],
}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_make_target_runs_the_dev_py_command(target: str) -> None:
    shown = subprocess.run(
        ["make", "-n", target, "ARGS=--extra"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown == EXPECTED[target]
