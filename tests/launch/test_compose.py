"""docker-compose.yml and the Dockerfile: valid by the Compose specification, wired in order, naming real things.

No Docker engine runs here, so the files are checked rather than run: the compose file against the
Compose specification's JSON schema (as shipped by check-jsonschema), every command in both files
against this project's modules, Celery's subcommands and options, and its queues.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml

from tests.utils.commands import command_problems
from tests.utils.processes import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
APP_SERVICES = ("migrate", "api", "worker", "beat", "flower")


def compose_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text(encoding="utf-8")
    )
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


def validation_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def healthcheck_argv(test: list[str]) -> list[str]:
    kind, *rest = test
    return shlex.split(rest[0]) if kind == "CMD-SHELL" else rest


def test_compose_file_is_valid_by_the_compose_specification(compose: dict[str, Any]) -> None:
    assert validation_errors(compose) == []


def test_the_schema_check_catches_a_broken_compose_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["depends_on"]["redis"]["condition"] = "service_ready"
    broken["services"]["worker"]["restartt"] = "always"
    assert len(validation_errors(broken)) >= 2


def test_compose_has_every_service_the_issue_names(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", "postgres", *APP_SERVICES}
    assert compose["services"]["redis"]["image"] == "redis:7-alpine"
    assert compose["services"]["postgres"]["image"] == "postgres:16-alpine"
    redis_command = compose["services"]["redis"]["command"]
    assert redis_command[1:3] == ["--appendonly", "yes"]
    assert "noeviction" in redis_command


def test_every_service_waits_for_what_it_needs_to_be_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("redis", "postgres", "api", "worker", "flower"):
        assert "healthcheck" in services[name], name
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        for dependency, rule in depends.items():
            expected = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert rule["condition"] == expected, (name, dependency)
    assert set(services["migrate"]["depends_on"]) == {"postgres"}
    assert {"redis", "migrate"} <= set(services["api"]["depends_on"])
    assert {"redis", "postgres", "migrate"} <= set(services["worker"]["depends_on"])


def test_app_services_reach_redis_and_postgres_by_service_name(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        environment = service["environment"]
        assert environment["REDIS_HOST"] == "redis"
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg://convoflow:")
        assert "@postgres:5432/convoflow" in environment["DATABASE_URL"]
        assert service["env_file"] == [{"path": ".env", "required": False}]


def test_beat_runs_exactly_once_with_its_schedule_on_a_volume(compose: dict[str, Any]) -> None:
    beat = compose["services"]["beat"]
    assert beat["deploy"]["replicas"] == 1
    assert "scale" not in beat
    [volume] = beat["volumes"]
    name, target = volume.split(":")
    assert name in compose["volumes"]
    assert any(arg == f"--schedule={target}/celerybeat-schedule" for arg in beat["command"])


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["redis"]["volumes"] == ["redis-data:/data"]
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert set(compose["volumes"]) == {"redis-data", "postgres-data", "beat-data"}


def test_flower_listens_on_5555_with_basic_auth_from_the_environment(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == "${FLOWER_BASIC_AUTH:-}"
    assert flower["environment"]["FLOWER_PORT"] == "5555"
    assert flower["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]


@pytest.mark.parametrize("service", ["redis", "postgres", *APP_SERVICES])
def test_each_compose_command_names_real_modules_commands_options_and_queues(
    compose: dict[str, Any], service: str
) -> None:
    definition = compose["services"][service]
    commands = []
    if "command" in definition:
        commands.append(as_argv(definition["command"]))
    if "healthcheck" in definition:
        commands.append(healthcheck_argv(definition["healthcheck"]["test"]))
    assert commands
    for argv in commands:
        assert command_problems(argv) == [], argv


def test_the_worker_consumes_every_queue_without_a_queue_flag(compose: dict[str, Any]) -> None:
    command = compose["services"]["worker"]["command"]
    assert command[:4] == ["celery", "-A", "celery_app", "worker"]
    assert not any(arg.startswith(("-Q", "--queues")) for arg in command)


def test_the_dockerfile_is_slim_non_root_and_installs_dependencies_before_the_code() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    copies = [index for index, line in enumerate(instructions) if line.startswith("COPY")]
    install = next(index for index, line in enumerate(instructions) if "pip install" in line)
    assert instructions[copies[0]] == "COPY pyproject.toml ./"
    assert copies[0] < install < copies[1]
    assert instructions[copies[1]] == "COPY . ."
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_the_dockerfile_command_names_real_things() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    found = re.findall(r"^(?:CMD|ENTRYPOINT) (\[.*\])$", text, flags=re.MULTILINE)
    assert found
    for argv in map(json.loads, found):
        assert command_problems(argv) == [], argv


def test_the_image_leaves_out_the_virtualenv_local_data_and_secrets() -> None:
    ignored = set((PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", "data", ".env", ".git"} <= ignored
