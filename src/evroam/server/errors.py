"""Exception handlers: every error becomes an OCPI envelope, never a bare 4xx/500."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from evroam.ocpi.base import error_text
from evroam.ocpi.status import OcpiError, StatusCode
from evroam.server.auth import note_routing_of_error
from evroam.server.responses import ocpi_response

log = structlog.get_logger(__name__)


def validation_error_response(exc: ValidationError):
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return ocpi_response(status_code=StatusCode.CLIENT_ERROR, http_status=400,
                             status_message="request body is not valid JSON")
    # Valid JSON addressing an existing resource: no HTTP error (status_codes.asciidoc).
    return ocpi_response(status_code=StatusCode.INVALID_PARAMETERS, status_message=error_text(exc))


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """The Allow header of a 405: every method some route serves at this
    path. Each method is its own route and the router stops at the first
    whose path matches, so the Allow it gives names only that route's
    methods; asking the router about each method finds them all."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install(app: FastAPI) -> None:
    @app.exception_handler(OcpiError)
    async def _ocpi_error(request: Request, exc: OcpiError):
        request.state.ocpi_status = exc.status_code
        await note_routing_of_error(request)
        # A 405 names what the path does serve (RFC 9110), the handshake's too.
        headers = {"Allow": allowed_methods(request)} if exc.http_status == 405 else None
        return ocpi_response(exc.data, status_code=exc.status_code, status_message=exc.message,
                             http_status=exc.http_status, headers=headers)

    @app.exception_handler(ValidationError)
    async def _validation(request: Request, exc: ValidationError):
        await note_routing_of_error(request)
        return validation_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError):
        await note_routing_of_error(request)
        msgs = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
        return ocpi_response(status_code=StatusCode.INVALID_PARAMETERS, status_message=msgs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        await note_routing_of_error(request)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return ocpi_response(status_code=StatusCode.CLIENT_ERROR, status_message=str(exc.detail),
                             http_status=exc.status_code, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect):
        # The caller hung up mid-body (e.g. a partner process killed): nothing
        # to answer, nothing written, and not our error.
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("server.unhandled", path=request.url.path)
        return ocpi_response(status_code=StatusCode.SERVER_ERROR, status_message="internal error",
                             http_status=500)
