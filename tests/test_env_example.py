"""`.env.example` documents every setting, and names nothing that is not one."""

from __future__ import annotations

import re

from convoflow.config import Settings
from tests.utils.processes import PROJECT_ROOT


def test_env_example_lists_exactly_the_settings() -> None:
    text = (PROJECT_ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    settings = {name.upper() for name in Settings.model_fields}
    assert sorted(settings - documented) == [], "settings missing from .env.example"
    assert sorted(documented - settings) == [], ".env.example names unknown settings"


def test_env_example_loads_as_valid_settings(tmp_path: object) -> None:
    settings = Settings(_env_file=str(PROJECT_ROOT / ".env.example"))  # type: ignore[call-arg]
    assert settings.llm_provider == "offline"
