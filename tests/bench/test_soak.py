"""The soak's script tells answered turns from history pages, and the soak finds every answered turn stored."""

from __future__ import annotations

from pathlib import Path

from bench.harness import bench_stack, free_redis_db
from bench.soak import soak


def test_a_short_soak_counts_turns_and_reads_and_finds_every_turn_stored(tmp_path: Path) -> None:
    with free_redis_db() as redis_db, bench_stack("postgresql", tmp_path, redis_db) as stack:
        figures = soak(stack, rounds=2, seconds=2, connections=4)

    assert figures["failed"] == 0
    assert figures["answered"] > 0 and figures["history_reads"] > 0
    # Four turns to one read (bench/soak.lua), give or take the requests in flight when a round ended.
    assert 3 * figures["history_reads"] <= figures["answered"] <= 5 * figures["history_reads"]
    assert figures["stored"] >= figures["answered"] and figures["lost"] == 0
    assert len(figures["api_rss_mb_by_round"]) == len(figures["worker_rss_mb_by_round"]) == 2
    assert len(figures["redis_used_mb_by_round"]) == 2 and min(figures["redis_used_mb_by_round"]) > 0
