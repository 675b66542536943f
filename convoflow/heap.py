"""Short garbage collections in long-running processes: the startup heap is frozen out of the collector's sight.

The API and worker processes start with some 150,000 objects (FastAPI, LangGraph, Celery, SQLAlchemy, pydantic)
that live as long as the process. CPython's full collections scan all of them: 130 ms on a 2-core VM, every few
seconds under load, a pause that every request in flight waits out (it was most of the p99 of GET /history).
`gc.freeze()` moves them to a permanent generation the collector never scans; objects created afterwards are
collected as usual. In a forking worker it also keeps the children from writing to pages they share with the
parent.

The API also collects its young generation less often. CPython runs a young collection every 700 new container
objects; with hundreds of requests in flight (a slow model), each one finds most objects still in use by some
request, promotes them, and the older generations then scan every request's state again and again: 16-23% of the
API's CPU with 500 connections. Every 50,000 allocations, most of a request's objects are gone before a collection
sees them (reference counting frees them; only cycles wait for the collector).
"""

from __future__ import annotations

import gc

# New container objects between two young collections in the API (CPython's default is 700).
API_YOUNG_COLLECTION_EVERY = 50_000


def freeze_startup_heap(collect: bool = True) -> int:
    """Freeze every object tracked now (after a collection, unless `collect` is false); returns the frozen count."""
    if collect:
        gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def collect_young_less_often(allocations: int = API_YOUNG_COLLECTION_EVERY) -> int:
    """Run a young collection every `allocations` new objects, the older generations' thresholds unchanged.

    Returns the new threshold.
    """
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(allocations, middle, old)
    return allocations
