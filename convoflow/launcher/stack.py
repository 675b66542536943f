"""The one-command stack: pick the broker, migrate, then run API, worker, Beat and Flower until told to stop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import make_url

from convoflow.config import Settings
from convoflow.db.engine import dispose_engines
from convoflow.db.migrate import upgrade_to_head
from convoflow.launcher import services
from convoflow.launcher.broker import BrokerUnavailable, EmbeddedValkey, plan_broker
from convoflow.launcher.supervisor import Supervisor, describe_exit

BROKER_START_TIMEOUT_SECONDS = 20.0
READY_POLL_SECONDS = 0.5
SLOW_START_SECONDS = 60.0


@dataclass(frozen=True)
class StackOptions:
    flower: bool = True
    beat: bool = True
    concurrency: int | None = None
    loglevel: str = "info"


def run_stack(settings: Settings, options: StackOptions, supervisor: Supervisor) -> int:
    """Start everything under `supervisor` and watch it; the caller stops the children afterwards."""
    started = time.monotonic()
    try:
        plan = plan_broker(settings)
    except BrokerUnavailable as exc:
        supervisor.say(f"ERROR: {exc}")
        return 1
    supervisor.say(f"broker: {plan.description}")
    if not migrate(settings, supervisor):
        return 1
    if plan.embedded is not None and not _start_embedded(plan.embedded, supervisor):
        return 1
    if supervisor.stop_requested.is_set():
        return 0

    specs = [services.worker(options.loglevel, options.concurrency)]
    if options.beat:
        specs.append(services.beat(settings, options.loglevel))
    if options.flower:
        specs.append(services.flower(settings))
    specs.append(services.api(settings.api_port))
    for spec in specs:
        supervisor.start(spec.with_env(plan.child_env))

    api = services.api_url(settings)
    supervisor.say(f"API: {api}   docs: {api}/docs   health: {api}/health")
    if options.flower:
        supervisor.say(services.flower_notice(settings))
    _announce_when_ready(settings, supervisor, started)
    return supervisor.run_until_stopped()


def migrate(settings: Settings, supervisor: Supervisor) -> bool:
    """Bring the database to the latest schema before any worker stores a turn; False (reported) on failure."""
    url = settings.sqlalchemy_url
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        before, after = upgrade_to_head(url)
    except Exception as exc:  # any database error ends the start, with its message
        supervisor.say(f"ERROR: could not migrate the database {shown}: {exc}")
        return False
    finally:
        dispose_engines()
    change = f"migrated from {before or 'an empty database'}" if before != after else "already current"
    supervisor.say(f"database: {shown}, schema {after} ({change})")
    return True


def _start_embedded(server: EmbeddedValkey, supervisor: Supervisor) -> bool:
    server.data_dir.mkdir(parents=True, exist_ok=True)
    child = supervisor.start(server.spec())
    deadline = time.monotonic() + BROKER_START_TIMEOUT_SECONDS
    while not server.answers():
        if not child.running:
            child.pump.join(timeout=2)
            supervisor.say(f"ERROR: the embedded broker exited at start ({describe_exit(child.popen.returncode)})")
            return False
        if supervisor.stop_requested.is_set():
            break  # the caller sees the stop and returns
        if time.monotonic() > deadline:
            supervisor.say(f"ERROR: the embedded broker did not answer within {BROKER_START_TIMEOUT_SECONDS:g}s")
            return False
        time.sleep(0.1)
    return True


def _announce_when_ready(settings: Settings, supervisor: Supervisor, started: float) -> None:
    """Say once when GET /health first answers 200 (broker, worker and database all up), or what it lacks."""
    url = f"http://{services.reachable_host(settings.api_host)}:{settings.api_port}/health"

    def poll() -> None:
        hint_at = time.monotonic() + SLOW_START_SECONDS
        with httpx.Client(timeout=5) as client:
            while not supervisor.stop_requested.wait(READY_POLL_SECONDS):
                try:
                    response = client.get(url)
                except httpx.HTTPError as exc:
                    answer = f"no answer ({exc.__class__.__name__})"
                else:
                    if response.status_code == 200:
                        elapsed = time.monotonic() - started
                        supervisor.say(f"ready after {elapsed:.1f}s: {services.api_url(settings)} answers /health")
                        return
                    answer = f"{response.status_code} {response.text}"
                if time.monotonic() > hint_at:
                    supervisor.say(f"not ready after {SLOW_START_SECONDS:g}s; {url} says: {answer}")
                    hint_at = float("inf")

    threading.Thread(target=poll, name="readiness", daemon=True).start()
