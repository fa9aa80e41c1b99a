"""The FastAPI application of a node."""

from __future__ import annotations

from fastapi import FastAPI

from evroam.server import credentials, errors, versions
from evroam.server.body import UnknownFieldLog
from evroam.server.context import ServerContext
from evroam.server.middleware import OcpiMiddleware
from evroam.store.calllog import CallLog


def create_app(ctx: ServerContext, call_log: CallLog | None = None) -> FastAPI:
    app = FastAPI(
        title="evroam",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.ctx = ctx
    app.state.engine = ctx.engine
    app.state.unknown_fields = UnknownFieldLog()
    errors.install(app)
    app.include_router(versions.router)
    app.include_router(credentials.router)
    app.add_middleware(OcpiMiddleware, call_log=call_log)
    return app
