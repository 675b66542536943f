"""Queue names and task routes: database tasks go to `database` (as the seed says), workflow runs to `workflow`.

A worker started without `-Q` consumes every queue in QUEUES, so `celery -A celery_app worker` handles both;
in production the `workflow` queue (I/O-bound model calls, seconds each) suits a thread pool of its own that
takes one run per thread at a time (the default prefetch suits batched saves, not runs):
`celery -A celery_app worker -Q workflow -P threads -c 8 --prefetch-multiplier 1 -n workflow@%h`
beside `celery -A celery_app worker -Q database -n database@%h`.
"""

from __future__ import annotations

from kombu import Exchange, Queue

from convoflow.tasks import names

DATABASE_QUEUE = "database"
WORKFLOW_QUEUE = "workflow"

QUEUES: tuple[Queue, ...] = (
    Queue(DATABASE_QUEUE, routing_key=DATABASE_QUEUE),
    Queue(WORKFLOW_QUEUE, routing_key=WORKFLOW_QUEUE),
)


def task_queues(quorum: bool = False) -> tuple[Queue, ...]:
    """QUEUES, or (`quorum`, RabbitMQ only) the same queues as quorum queues.

    A quorum queue is replicated to a majority of the cluster's nodes. It refuses the global prefetch Celery uses
    (Celery detects the queue type and prefetches per consumer instead) and holds no message for later, so a
    countdown or a retry's back-off goes through RabbitMQ's native delayed delivery, which Celery sets up for queues
    bound to a topic exchange: each queue gets a topic exchange of its own name.
    """
    if not quorum:
        return QUEUES
    return tuple(
        Queue(
            queue.name,
            Exchange(queue.name, type="topic"),
            routing_key=queue.routing_key,
            queue_arguments={"x-queue-type": "quorum"},
        )
        for queue in QUEUES
    )


TASK_ROUTES: dict[str, dict[str, str]] = {
    names.SAVE_CONVERSATION: {"queue": DATABASE_QUEUE},
    names.SAVE_TURNS: {"queue": DATABASE_QUEUE},
    names.GET_HISTORY: {"queue": DATABASE_QUEUE},
    names.DELETE_HISTORY: {"queue": DATABASE_QUEUE},
    names.INIT_DATABASE: {"queue": DATABASE_QUEUE},
    names.CLEANUP_EXPIRED: {"queue": DATABASE_QUEUE},
    names.CHECK_DATABASE: {"queue": DATABASE_QUEUE},
    names.LIST_SESSIONS: {"queue": DATABASE_QUEUE},
    names.RUN_WORKFLOW: {"queue": WORKFLOW_QUEUE},
}

TASK_MODULES: tuple[str, ...] = (
    "convoflow.tasks.conversations",
    "convoflow.tasks.maintenance",
    "convoflow.tasks.health",
    "convoflow.tasks.sessions",
    "convoflow.tasks.runs",
)
