"""Schemathesis against the running API's own /openapi.json: no server errors, every answer as the schema says.

Every operation the live schema lists is exercised (new routes are picked up without editing this file),
with valid data and with data the schema forbids, a bounded number of examples each.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.utils.auth import bearer
from tests.utils.stack import Stack

pytestmark = pytest.mark.schemathesis

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The fuzzer has a key of its own, so whatever it deletes is only ever its own turns.
AUTH = bearer("fuzzer")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_the_api_answers_as_its_schema_says(keyed_stack: Stack, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{keyed_stack.api_url}/openapi.json", headers=AUTH)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the published schema itself is invalid
        operations.append(result.ok())
    assert {operation.label for operation in operations} >= {"POST /run", "GET /history", "GET /task/{task_id}"}
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: Case[Any]) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=30)

        try:
            answers_as_documented()
        except Unsatisfiable:  # nothing about this operation can be invalid (no parameters, no body)
            continue
        except Exception as exc:  # report every operation's finding, not only the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
