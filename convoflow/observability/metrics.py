"""Every Prometheus metric convoflow records, in one place (names, labels, buckets).

Labels stay bounded: route templates, task names, provider and model names, never ids or raw paths.
Counters and histograms only, so they aggregate across processes in multi-process mode without extra care.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

# `*_created` series double the output and carry nothing the dashboards use (multi-process mode omits them too).
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

# --- API ------------------------------------------------------------------------------------------
http_requests = Counter(
    "convoflow_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
http_request_duration = Histogram(
    "convoflow_http_request_duration_seconds",
    "Time from request to the end of the response, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
turns_answered = Counter("convoflow_turns_answered", "Turns answered by the model whose save the broker accepted.")

# --- The model --------------------------------------------------------------------------------------
model_request_duration = Histogram(
    "convoflow_model_request_duration_seconds",
    "Time a model call took (retries included), by provider, model and mode (complete or stream).",
    ["provider", "model", "mode"],
    buckets=LATENCY_BUCKETS,
)
model_first_token = Histogram(
    "convoflow_model_first_token_seconds",
    "Time from a streamed model call to its first text (retries included), by provider and model.",
    ["provider", "model"],
    buckets=LATENCY_BUCKETS,
)
model_errors = Counter(
    "convoflow_model_errors", "Model calls that failed after their retries.", ["provider", "model", "mode"]
)
model_retries = Counter(
    "convoflow_model_retries",
    "Failed model attempts that were tried again, by provider, model and reason "
    "(http_<status>, timeout, connection, or the error's type).",
    ["provider", "model", "reason"],
)
model_tokens = Counter(
    "convoflow_model_tokens",
    "Tokens sent to and received from the model (kind: prompt or completion); "
    "counted_by is 'usage' when the provider reported them, 'words' when estimated from the text.",
    ["provider", "model", "kind", "counted_by"],
)

memory_recalls = Counter(
    "convoflow_memory_recalls",
    "Session memories read from the database because Redis held none, by outcome: recalled (stored turns found), "
    "empty (none stored), failed (answered without memory).",
    ["outcome"],
)

# --- Workers ----------------------------------------------------------------------------------------
tasks = Counter(
    "convoflow_tasks", "Task executions by task name and outcome (success, failure, retry).", ["task", "outcome"]
)
task_duration = Histogram(
    "convoflow_task_duration_seconds", "Time a task ran in a worker, by task name.", ["task"], buckets=LATENCY_BUCKETS
)
turns_persisted = Counter("convoflow_turns_persisted", "Turns written to the database (duplicates not counted).")
answer_to_stored = Histogram(
    "convoflow_answer_to_stored_seconds",
    "Time from a turn's answer to its row in the database.",
    buckets=LAG_BUCKETS,
)
