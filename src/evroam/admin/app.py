"""The admin FastAPI sub-application and its token.

The token comes from the environment only (EVROAM_ADMIN_TOKEN, or the file
named by EVROAM_ADMIN_TOKEN_FILE, e.g. a mounted secret), never from the
repository or evroam.toml. Without one the admin API is not mounted at all:
/admin answers 404, and a log line says why.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from evroam.admin import answers, commands, objects, partners, sessions
from evroam.config import NodeConfig
from evroam.ocpi.base import error_text
from evroam.ocpi.status import OcpiError, StatusCode
from evroam.server.responses import ocpi_response

if TYPE_CHECKING:
    from evroam.admin.service import NodeService

log = structlog.get_logger(__name__)

TOKEN_ENV = "EVROAM_ADMIN_TOKEN"
TOKEN_FILE_ENV = "EVROAM_ADMIN_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16

_bearer = HTTPBearer(auto_error=False, description=f"The admin token ({TOKEN_ENV} or {TOKEN_FILE_ENV}).")


def resolve_token(config: NodeConfig) -> str | None:
    """The admin token, or None (admin API disabled)."""
    if config.admin_token:
        return config.admin_token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            log.error("admin.token_file_unreadable", path=path, error=exc.strerror or str(exc))
            return None
        except UnicodeDecodeError:
            log.error("admin.token_file_unreadable", path=path, error="not UTF-8 text")
            return None
        if not token:
            log.error("admin.token_file_empty", path=path)
        return token or None
    return None


async def require_admin(request: Request,
                        creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    expected: bytes = request.app.state.admin_token
    if creds is None:
        raise StarletteHTTPException(401, "missing admin token: send `Authorization: Bearer <token>`",
                                     headers={"WWW-Authenticate": "Bearer"})
    # Constant time, so response timing tells nothing about the token.
    if not hmac.compare_digest(creds.credentials.encode("utf-8"), expected):
        raise StarletteHTTPException(401, "wrong admin token", headers={"WWW-Authenticate": "Bearer"})


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(OcpiError)
    async def _ocpi_error(request: Request, exc: OcpiError):
        http = exc.http_status
        if http == 200 and 2000 <= exc.status_code < 3000:
            http = 400  # an admin caller is told plainly that its request was wrong
        return ocpi_response(exc.data, status_code=exc.status_code, status_message=exc.message, http_status=http)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError):
        msgs = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
        return ocpi_response(status_code=StatusCode.INVALID_PARAMETERS, status_message=msgs, http_status=400)

    @app.exception_handler(ValidationError)
    async def _validation(request: Request, exc: ValidationError):
        return ocpi_response(status_code=StatusCode.INVALID_PARAMETERS, status_message=error_text(exc),
                             http_status=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return ocpi_response(status_code=StatusCode.CLIENT_ERROR, status_message=str(exc.detail),
                             http_status=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("admin.unhandled", path=request.url.path)
        return ocpi_response(status_code=StatusCode.SERVER_ERROR, status_message="internal error", http_status=500)


def create_admin_app(node: NodeService) -> FastAPI | None:
    token = resolve_token(node.config)
    if token is None:
        log.info("admin.disabled", reason=f"no admin token: set {TOKEN_ENV} or {TOKEN_FILE_ENV} to enable /admin")
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        log.warning("admin.weak_token", length=len(token), advice=f"use at least {MIN_TOKEN_LENGTH} random characters")
    app = FastAPI(
        title="evroam admin",
        description="The operator's API: publish our own objects (partners get them pushed) and read what "
                    "partners sent. Every route needs `Authorization: Bearer <admin token>`.",
        docs_url="/docs", redoc_url=None, openapi_url="/openapi.json", redirect_slashes=False,
        dependencies=[Depends(require_admin)],
    )
    app.state.node = node
    app.state.admin_token = token.encode("utf-8")
    _install_errors(app)
    every = answers(401)  # require_admin guards every route
    app.include_router(objects.router, tags=["our objects"], responses=every)
    app.include_router(partners.router, tags=["partners"], responses=every)
    app.include_router(sessions.router, tags=["sessions and CDRs"], responses=every)
    app.include_router(commands.router, tags=["commands"], responses=every)
    _document_bodies(app)
    return app


def _document_bodies(app: FastAPI) -> None:
    """Put the OCPI object schemas the hand-parsed bodies refer to into the
    OpenAPI components, so /admin/docs shows and validates them, and drop
    the 422 FastAPI lists for typed parameters: a bad one is answered 400."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(unused, None)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in objects.BODY_MODELS:
                doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in doc.pop("$defs", {}).items():
                    components.setdefault(name, sub)
                components[model.__name__] = doc
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def mount_admin(node: NodeService, app: FastAPI) -> bool:
    """Mount the admin API at /admin on the node's app, if a token is configured."""
    admin = create_admin_app(node)
    if admin is None:
        return False
    app.mount("/admin", admin)
    log.info("admin.enabled", docs="/admin/docs")
    return True
