#!/usr/bin/env python3
"""The seed's `python start_celery_services.py`: Celery worker, Beat and Flower as supervised child processes.

The database is migrated first when the worker is started. Ctrl-C (or SIGTERM) stops them all in order;
a service that dies is reported and the others are stopped.
The API is not started here: `python main.py` does that (or `python -m convoflow.launcher` runs everything).
"""

from __future__ import annotations

import argparse
import os
import sys

from convoflow.config import PROJECT_ROOT, get_settings
from convoflow.launcher import services
from convoflow.launcher.broker import BrokerUnavailable, check_reachable
from convoflow.launcher.stack import migrate
from convoflow.launcher.supervisor import Supervisor
from convoflow.worker.queues import QUEUES

QUEUE_NAMES = tuple(str(queue.name) for queue in QUEUES)
# Celery's default prefork pool does not run on Windows.
DEFAULT_POOL = "threads" if os.name == "nt" else None


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}"
        )
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python start_celery_services.py",
        description="Start the Celery worker, Beat and Flower for convoflow; Ctrl-C stops them all.",
    )
    parser.add_argument("--concurrency", type=int, metavar="N", help="worker processes (default: one per CPU)")
    parser.add_argument(
        "--queues",
        type=lambda text: _names(text, QUEUE_NAMES, "queue"),
        metavar="Q1,Q2",
        help=f"queues the worker consumes (default: all: {', '.join(QUEUE_NAMES)})",
    )
    parser.add_argument(
        "--only",
        type=lambda text: _names(text, services.SERVICE_NAMES, "service"),
        default=list(services.SERVICE_NAMES),
        metavar="SERVICES",
        help="comma-separated subset of worker,beat,flower (default: all three)",
    )
    parser.add_argument("--loglevel", default="info", help="Celery log level (default: info)")
    parser.add_argument("--pool", default=DEFAULT_POOL, help="worker pool (default: WORKER_POOL; threads on Windows)")
    args = parser.parse_args(argv)
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    try:
        check_reachable(settings)
    except BrokerUnavailable as exc:
        print(f"start_celery_services: error: {exc}", file=sys.stderr)
        return 1
    supervisor = Supervisor(cwd=PROJECT_ROOT, name="services")
    supervisor.install_signal_handlers()
    try:
        if "worker" in args.only and not migrate(settings, supervisor):
            return 1
        if "worker" in args.only:
            supervisor.start(services.worker(args.loglevel, args.concurrency, args.queues or (), args.pool))
        if "beat" in args.only:
            supervisor.start(services.beat(settings, args.loglevel))
        if "flower" in args.only:
            supervisor.start(services.flower(settings))
            supervisor.say(services.flower_notice(settings))
        return supervisor.run_until_stopped()
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main())
