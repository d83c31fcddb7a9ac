"""RFC 9457 problem details for every error the API returns, mapped in one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracechain.capture import DocumentRejected, InvalidSignatures
from tracechain.epcis.identifiers import InvalidIdentifier
from tracechain.errors import ContractRevert, TracechainError

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

    @app.exception_handler(InvalidSignatures)
    async def _bad_signatures(request: Request, exc: InvalidSignatures) -> JSONResponse:
        errors = [{"location": p.location, "reason": p.reason} for p in exc.problems]
        return problem_response(400, "Signatures rejected", str(exc), request.url.path, errors=errors)

    @app.exception_handler(ContractRevert)
    async def _revert(request: Request, exc: ContractRevert) -> JSONResponse:
        return problem_response(409, exc.error_name, str(exc), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, _title(exc.status_code), str(exc.detail), request.url.path)

    @app.exception_handler(TracechainError)
    async def _tracechain(request: Request, exc: TracechainError) -> JSONResponse:
        return problem_response(503, "Service unavailable", str(exc), request.url.path)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
