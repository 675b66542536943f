"""Exception handlers: every error leaves the API as JSON with a code and a readable message."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import AuthenticationError, RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from convoflow.config import get_settings
from convoflow.errors import ServiceError
from convoflow.workflow import ModelError

logger = logging.getLogger(__name__)

# What FastAPI says when reading the JSON body failed other than with a JSONDecodeError.
FASTAPI_BODY_PARSE_FAILURE = "There was an error parsing the body"
UNPARSABLE_BODY = (
    "the body could not be parsed as JSON: it must be UTF-8, nested less than about 1000 levels deep, "
    "with numbers of at most 4300 digits"
)


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **details}


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.details), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(ModelError)
    async def _model_error(_: Request, exc: ModelError) -> JSONResponse:
        logger.warning("model call failed: %s", exc.log_text)
        return JSONResponse(
            error_body("model_unavailable", f"the language model did not answer: {exc}", provider=exc.provider),
            status_code=502,
        )

    @app.exception_handler(RedisError)
    async def _redis_error(_: Request, exc: RedisError) -> JSONResponse:
        address = get_settings().redis_address
        if isinstance(exc, AuthenticationError):
            logger.warning("Redis at %s refused the credentials: %s", address, exc.__class__.__name__)
            message = f"Redis at {address} refused the credentials (check REDIS_PASSWORD); try again shortly"
            return JSONResponse(error_body("redis_unavailable", message), status_code=503)
        logger.warning("Redis unreachable at %s: %s", address, exc.__class__.__name__)
        return JSONResponse(
            error_body("redis_unavailable", f"Redis is unreachable at {address}; try again shortly"), status_code=503
        )

    @app.exception_handler(BrokerError)
    async def _broker_error(_: Request, exc: BrokerError) -> JSONResponse:
        logger.warning("broker unreachable: %s", exc.__class__.__name__)
        return JSONResponse(
            error_body("broker_unavailable", "the message broker is unreachable; try again shortly"), status_code=503
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
            for error in exc.errors()
        ]
        message = "; ".join(_describe(error) for error in exc.errors()) or "invalid request"
        return JSONResponse(error_body("validation_error", message, detail=problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_FAILURE:
            # json.loads gave up for another reason than a syntax error: nesting too deep, a number too long, ...
            problem = {"loc": ["body"], "msg": UNPARSABLE_BODY, "type": "json_invalid"}
            return JSONResponse(
                error_body("validation_error", f"body: {UNPARSABLE_BODY}", detail=[problem]), status_code=422
            )
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)
