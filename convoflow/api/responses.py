"""The error answers routes declare in OpenAPI, so the published schema matches what clients get."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convoflow.api.schemas import ErrorResponse, ValidationErrorResponse

DESCRIPTIONS: dict[int, str] = {
    400: "the request is contradictory",
    401: "no API key, or an unknown one (only when the service sets API_KEYS)",
    404: "not found",
    409: "conflict",
    413: "the request body is larger than MAX_REQUEST_BYTES",
    414: "the request target (path and query) is longer than MAX_URL_BYTES",
    415: "the body is not JSON",
    422: "a parameter or the body is invalid; `detail` lists each problem",
    502: "a worker or the language model failed",
    503: "the broker or Redis is unreachable",
    504: "no worker answered in time",
}


def error_responses(*codes: int, described: Mapping[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these status codes, each with its JSON error body."""
    descriptions = {**DESCRIPTIONS, **(described or {})}
    return {
        code: {"model": ValidationErrorResponse if code == 422 else ErrorResponse, "description": descriptions[code]}
        for code in codes
    }
