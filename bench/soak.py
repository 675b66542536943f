"""The soak (`--only soak`, not in the default run): a mixed load of turns and history reads in rounds, the API's,
the worker's and Redis's memory after each, and at the end whether every answered turn was stored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BenchStack, WrkResult, redis_used_mb, rss_mb, wait_for_count, wrk

SOAK_SCRIPT = Path(__file__).with_name("soak.lua")


@dataclass(frozen=True)
class SoakRound:
    """What one round of the soak's script counted (bench/soak.lua)."""

    answered: int
    reads: int
    failed: int

    @classmethod
    def of(cls, result: WrkResult) -> SoakRound:
        match = re.search(r"soak: answered (\d+) read (\d+) failed (\d+)", result.output)
        if match is None:
            raise RuntimeError(f"the soak script wrote no totals:\n{result.output}")
        answered, reads, failed = (int(group) for group in match.groups())
        # A request wrk gave up on (a timeout, a broken connection) never reached the script's response().
        return cls(answered, reads, failed + result.errors)


def soak(stack: BenchStack, *, rounds: int = 6, seconds: int = 30, connections: int = 16) -> dict[str, Any]:
    """`rounds` wrk runs of `seconds` each on one API and one worker; memory is read after each round."""
    worker = stack.worker("--concurrency=2")
    api, url = stack.api()
    engine = stack.engine()
    try:
        before = stack.count_turns(engine)
        api_rss, worker_rss, redis_used, totals = [], [], [], SoakRound(0, 0, 0)
        elapsed = 0.0
        for _ in range(rounds):
            result = wrk(f"{url}/", connections=connections, seconds=seconds, script=SOAK_SCRIPT)
            counted = SoakRound.of(result)
            totals = SoakRound(
                totals.answered + counted.answered, totals.reads + counted.reads, totals.failed + counted.failed
            )
            elapsed += result.seconds
            api_rss.append(round(rss_mb(api.pid), 1))
            worker_rss.append(round(rss_mb(worker.pid), 1))
            redis_used.append(round(redis_used_mb(stack), 1))
        stored_after = wait_for_count(stack, engine, before + totals.answered, timeout=120)
        stored = stack.count_turns(engine) - before
    finally:
        engine.dispose()
        stack.stop_processes()
    return {
        "requests_per_s": (totals.answered + totals.reads + totals.failed) / elapsed if elapsed else 0.0,
        "answered": totals.answered,
        "history_reads": totals.reads,
        "failed": totals.failed,
        # At least `answered`: a turn in flight when a round ended was answered and stored but not counted.
        "stored": stored,
        "lost": max(0, totals.answered - stored),
        "stored_after_s": stored_after,
        "api_rss_mb_by_round": api_rss,
        "worker_rss_mb_by_round": worker_rss,
        # Turns' results stay RESULT_EXPIRES (a day), reads' READ_RESULT_EXPIRES (300 s: longer than the soak).
        "redis_used_mb_by_round": redis_used,
        "redis_growth_mb": redis_used[-1] - redis_used[0],
        # From the end of the first round (start-up and warm-up done) to the end of the last.
        "api_rss_growth_mb": api_rss[-1] - api_rss[0],
        "worker_rss_growth_mb": worker_rss[-1] - worker_rss[0],
    }
