"""`python -m convoflow.launcher`: broker, migrations, API, worker, Beat and Flower in one command; Ctrl-C stops all."""

from __future__ import annotations

import argparse
import sys

from convoflow.config import PROJECT_ROOT, get_settings
from convoflow.launcher.stack import StackOptions, run_stack
from convoflow.launcher.supervisor import Supervisor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m convoflow.launcher",
        description="Run the whole convoflow stack: the broker (an embedded Valkey when no Redis answers), "
        "database migrations, the API, a Celery worker, Beat and Flower. Ctrl-C stops everything.",
    )
    parser.add_argument("--no-flower", action="store_true", help="do not start Flower")
    parser.add_argument("--no-beat", action="store_true", help="do not start Beat (no periodic cleanup)")
    parser.add_argument("--concurrency", type=int, metavar="N", help="worker processes (default: one per CPU)")
    parser.add_argument("--api-port", type=int, metavar="PORT", help="port of the API (default: API_PORT)")
    parser.add_argument("--loglevel", default="info", help="Celery log level (default: info)")
    args = parser.parse_args(argv)
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    if args.api_port:
        settings = settings.model_copy(update={"api_port": args.api_port})
    options = StackOptions(
        flower=not args.no_flower, beat=not args.no_beat, concurrency=args.concurrency, loglevel=args.loglevel
    )
    supervisor = Supervisor(cwd=PROJECT_ROOT, name="launcher")
    supervisor.install_signal_handlers()
    try:
        return run_stack(settings, options, supervisor)
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main())
