"""Check the command lines our deployment files run (compose, Dockerfile, the Windows script) against reality.

A command passes when every name in it is real: the Python file or module exists, `celery -A <module>` loads
a Celery app, the subcommand is one Celery has, each option is one that subcommand accepts (also as printed
by `celery -A <module> <subcommand> --help`), choices such as the pool are valid and queues are the project's.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import subprocess
from collections.abc import Sequence

import click
from celery import Celery
from celery.app.control import Inspect
from celery.bin.celery import celery as celery_cli

from convoflow.worker.queues import QUEUES
from tests.utils.processes import PROJECT_ROOT, VENV_BIN

QUEUE_NAMES = frozenset(str(queue.name) for queue in QUEUES)
PYTHONS = frozenset({"python", "python3", "python.exe"})
# Programs provided by the service images themselves (redis:7-alpine, postgres:16-alpine), not by this project.
IMAGE_PROGRAMS = frozenset({"redis-server", "redis-cli", "pg_isready"})


def command_problems(argv: Sequence[str]) -> list[str]:
    """What is wrong with `argv`; empty when it names only real things."""
    if not argv:
        return ["empty command"]
    program, *args = argv
    if program in PYTHONS:
        return _python_problems(args)
    if program == "celery":
        return _celery_problems(args)
    if program in IMAGE_PROGRAMS:
        return []
    return [f"unknown program {program!r}"]


def _python_problems(args: list[str]) -> list[str]:
    if not args:
        return ["python without a script"]
    if args[0] == "-m":
        module = args[1]
        spec = importlib.util.find_spec(module)
        if spec is None:
            return [f"no module {module!r}"]
        if spec.submodule_search_locations is not None and importlib.util.find_spec(f"{module}.__main__") is None:
            return [f"package {module!r} has no __main__"]
        return []
    if args[0] == "-c":
        try:
            compile(args[1], "<python -c>", "exec")
        except SyntaxError as exc:
            return [f"python -c does not compile: {exc}"]
        return []
    if not (PROJECT_ROOT / args[0]).is_file():
        return [f"no file {args[0]!r} in the project"]
    return []


def _celery_problems(args: list[str]) -> list[str]:
    module = ""
    rest = list(args)
    if rest and rest[0] in ("-A", "--app"):
        module, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith(("-A=", "--app=")):
        module, rest = rest[0].split("=", 1)[1], rest[1:]
    if not module:
        return ["celery without -A <module>"]
    try:
        app = getattr(importlib.import_module(module), "app", None)
    except ImportError as exc:
        return [f"-A {module}: {exc}"]
    if not isinstance(app, Celery):
        return [f"{module!r} has no Celery `app`"]
    if not rest:
        return ["celery without a subcommand"]
    subcommand, options = rest[0], rest[1:]
    if subcommand not in celery_cli.commands:
        return [f"celery has no subcommand {subcommand!r}"]
    if subcommand == "flower":
        help_text(module, subcommand)  # the real CLI loads the app and knows the command
        return _flower_problems(options)
    return _click_problems(module, subcommand, options)


def _click_problems(module: str, subcommand: str, args: list[str]) -> list[str]:
    command = celery_cli.commands[subcommand]
    by_name = {name: param for param in command.params for name in (*param.opts, *param.secondary_opts)}
    positional = [param for param in command.params if isinstance(param, click.Argument)]
    printed = help_text(module, subcommand)
    problems: list[str] = []
    queue = list(args)
    while queue:
        arg = queue.pop(0)
        if not arg.startswith("-"):
            if not positional:
                problems.append(f"celery {subcommand} takes no argument {arg!r}")
            elif subcommand in ("inspect", "control") and not hasattr(Inspect, arg):
                problems.append(f"celery {subcommand} has no command {arg!r}")
            continue
        name, has_value, value = arg.partition("=")
        param = by_name.get(name)
        if param is None or name not in printed:
            problems.append(f"celery {subcommand} has no option {name}")
            continue
        if isinstance(param, click.Option) and param.is_flag:
            continue
        if not has_value:
            if not queue:
                problems.append(f"{name} needs a value")
                continue
            value = queue.pop(0)
        problems.extend(_value_problems(subcommand, name, param, value))
    return problems


def _value_problems(subcommand: str, name: str, param: click.Parameter, value: str) -> list[str]:
    if "$" in value:  # filled in by the shell at run time (e.g. celery@$HOSTNAME)
        return []
    if name in ("-Q", "--queues", "-X", "--exclude-queues"):
        unknown = sorted(set(value.split(",")) - QUEUE_NAMES)
        return [f"{name}: no queue named {', '.join(unknown)}"] if unknown else []
    if isinstance(param.type, click.Choice):
        choices = {str(choice).lower() for choice in param.type.choices}
        return [] if value.lower() in choices else [f"celery {subcommand} {name}: {value!r} is not one of {choices}"]
    if isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
        try:
            float(value)
        except ValueError:
            return [f"celery {subcommand} {name}: {value!r} is not a number"]
    return []


def _flower_problems(args: list[str]) -> list[str]:
    import flower.options  # noqa: F401  (defines Flower's options on tornado's registry)
    from tornado.options import options

    known = set(options._options)
    problems = []
    for arg in args:
        name = arg.split("=", 1)[0]
        if not name.startswith("--") or name[2:].replace("_", "-") not in known:
            problems.append(f"celery flower has no option {name}")
    return problems


@functools.cache
def help_text(module: str, subcommand: str) -> str:
    """What the real CLI prints for `celery -A module subcommand --help` (this also loads the app)."""
    result = subprocess.run(
        [str(VENV_BIN / "celery"), "-A", module, subcommand, "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"celery -A {module} {subcommand} --help failed:\n{result.stdout}{result.stderr}")
    return result.stdout
