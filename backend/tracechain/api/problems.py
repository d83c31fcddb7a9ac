"""RFC 9457 problem details for every error the API returns, mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from requests.exceptions import ConnectionError as NodeConnectionError
from requests.exceptions import Timeout as NodeTimeout
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracechain.capture import (
    CaptureLimitExceeded,
    ConcurrentCapture,
    DocumentRejected,
    InvalidJson,
    InvalidSignatures,
)
from tracechain.epcis.identifiers import InvalidIdentifier
from tracechain.epcis.query import InvalidQuery, QueryTooLarge
from tracechain.epcis.xml import InvalidXml
from tracechain.errors import ContractRevert, TracechainError
from tracechain.recovery import SubjectsBeingRepaired
from tracechain.services import CaptureQueueFull

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        super().__init__(detail)


def problem_response(status: int, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, request.url.path, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(part) for part in error["loc"]), "reason": error["msg"]}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['reason']}" for e in errors)
        return problem_response(422, "Invalid request", detail, request.url.path, errors=errors)

    @app.exception_handler(DocumentRejected)
    async def _rejected(request: Request, exc: DocumentRejected) -> JSONResponse:
        errors = [{"location": p.location, "reason": p.reason} for p in exc.problems]
        return problem_response(400, "EPCIS document rejected", str(exc), request.url.path, errors=errors)

    @app.exception_handler(InvalidIdentifier)
    async def _identifier(request: Request, exc: InvalidIdentifier) -> JSONResponse:
        return problem_response(400, "Invalid identifier", str(exc), request.url.path)

    @app.exception_handler(InvalidQuery)
    async def _bad_query(request: Request, exc: InvalidQuery) -> JSONResponse:
        errors = [{"location": f"query.{name}", "reason": reason} for name, reason in exc.problems]
        return problem_response(
            400,
            "Invalid query parameter",
            str(exc),
            request.url.path,
            type="epcisException:QueryParameterException",
            parameters=[name for name, _ in exc.problems],
            errors=errors,
        )

    @app.exception_handler(QueryTooLarge)
    async def _query_too_large(request: Request, exc: QueryTooLarge) -> JSONResponse:
        return problem_response(
            413,
            "Query too large",
            str(exc),
            request.url.path,
            type="epcisException:QueryTooLargeException",
            parameters=["maxEventCount"],
            limit=exc.allowed,
        )

    @app.exception_handler(InvalidSignatures)
    async def _bad_signatures(request: Request, exc: InvalidSignatures) -> JSONResponse:
        errors = [{"location": p.location, "reason": p.reason} for p in exc.problems]
        return problem_response(400, "Signatures rejected", str(exc), request.url.path, errors=errors)

    @app.exception_handler(ContractRevert)
    async def _revert(request: Request, exc: ContractRevert) -> JSONResponse:
        return problem_response(409, exc.error_name, str(exc), request.url.path)

    @app.exception_handler(ConcurrentCapture)
    async def _concurrent(request: Request, exc: ConcurrentCapture) -> JSONResponse:
        return problem_response(409, "Conflict", str(exc), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, _title(exc.status_code), str(exc.detail), request.url.path)

    @app.exception_handler(CaptureLimitExceeded)
    async def _too_large(request: Request, exc: CaptureLimitExceeded) -> JSONResponse:
        return problem_response(
            413,
            "Capture limit exceeded",
            str(exc),
            request.url.path,
            type="epcisException:CaptureLimitExceededException",
            limit=exc.allowed,
        )

    @app.exception_handler(InvalidJson)
    async def _not_json(request: Request, exc: InvalidJson) -> JSONResponse:
        return problem_response(400, "Invalid JSON", str(exc), request.url.path)

    @app.exception_handler(InvalidXml)
    async def _not_epcis_xml(request: Request, exc: InvalidXml) -> JSONResponse:
        errors = [{"location": p.location, "reason": p.reason} for p in exc.problems]
        return problem_response(400, "Invalid EPCIS XML", str(exc), request.url.path, errors=errors)

    @app.exception_handler(CaptureQueueFull)
    async def _busy(request: Request, exc: CaptureQueueFull) -> JSONResponse:
        return _unavailable(request, "Too many captures waiting", str(exc), exc.retry_after_s)

    @app.exception_handler(SubjectsBeingRepaired)
    async def _repairing(request: Request, exc: SubjectsBeingRepaired) -> JSONResponse:
        response = problem_response(409, "Subjects being re-read from the chain", str(exc), request.url.path)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(TracechainError)
    async def _tracechain(request: Request, exc: TracechainError) -> JSONResponse:
        return problem_response(503, "Service unavailable", str(exc), request.url.path)

    # Outages: the client gets a 503 it can retry, the log one line per request, not a traceback.
    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, reason)
        return _unavailable(request, "Database unavailable", f"the database did not answer: {reason}", 5)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _database_down(request, exc)
        raise exc

    @app.exception_handler(NodeConnectionError)
    @app.exception_handler(NodeTimeout)
    async def _node_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: node unavailable: %s", request.method, request.url.path, type(exc).__name__)
        return _unavailable(request, "Node unavailable", "the chain's node did not answer; retry shortly", 5)


def _unavailable(request: Request, title: str, detail: str, retry_after_s: int) -> JSONResponse:
    response = problem_response(503, title, detail, request.url.path)
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
