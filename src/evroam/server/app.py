"""The FastAPI application of a node."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from evroam.ocpi.modules import INTERFACES, ObjectModule
from evroam.ocpi.versions import Endpoint, InterfaceRole, VersionNumber
from evroam.server import (
    cdrs,
    chargingprofiles,
    commands,
    credentials,
    errors,
    health,
    locations,
    sessions,
    tariffs,
    tokens,
    versions,
)
from evroam.server.access import AccessLogMiddleware
from evroam.server.body import UnknownFieldLog
from evroam.server.context import ServerContext
from evroam.server.fastpath import FastSender
from evroam.server.middleware import BodyLimit, OcpiMiddleware
from evroam.server.objects import fast_get_one_of
from evroam.server.routing import interface_path
from evroam.store.calllog import CallLog

V = VersionNumber.V2_2_1.value

# module id -> (Sender router, Receiver router); one router per interface.
MODULE_ROUTERS: dict[str, tuple[APIRouter, APIRouter]] = {
    "locations": (locations.sender, locations.receiver),
    "tariffs": (tariffs.sender, tariffs.receiver),
    "sessions": (sessions.sender, sessions.receiver),
    "cdrs": (cdrs.sender, cdrs.receiver),
    "tokens": (tokens.sender, tokens.receiver),
    "commands": (commands.sender, commands.receiver),
    "chargingprofiles": (chargingprofiles.sender, chargingprofiles.receiver),
}


def interfaces_for(ctx: ServerContext) -> list[tuple[str, InterfaceRole]]:
    """The (module, interface) pairs our roles implement, in a stable order."""
    wanted: list[tuple[str, InterfaceRole]] = []
    for role, _, _ in ctx.roles:
        for module, iface in INTERFACES.get(role, {}).items():
            if (module, iface) not in wanted and module in MODULE_ROUTERS:
                wanted.append((module, iface))
    return wanted


def create_app(ctx: ServerContext, call_log: CallLog | None = None, *, access_log: bool = False) -> FastAPI:
    app = FastAPI(title="evroam", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.state.ctx = ctx
    app.state.engine = ctx.engine
    app.state.unknown_fields = UnknownFieldLog()
    errors.install(app)
    app.include_router(health.router)
    app.include_router(versions.router)
    app.include_router(credentials.router)
    ctx.endpoints = []
    fast: dict[str, ObjectModule] = {}
    for module, iface in interfaces_for(ctx):
        sender, receiver = MODULE_ROUTERS[module]
        router = sender if iface == InterfaceRole.SENDER else receiver
        if not router.routes:  # an interface with nothing to serve is not published
            continue
        path = interface_path(V, module, iface)
        app.include_router(router, prefix=path)
        if (served := fast_get_one_of(router)) is not None:
            fast[path] = served
        ctx.endpoints.append(Endpoint(identifier=module, role=iface, url=ctx.endpoint_url(path)))
    # Added first, so it runs inside OcpiMiddleware: a refused body is in the call log too.
    app.add_middleware(BodyLimit, max_bytes=ctx.max_body_bytes)
    app.add_middleware(FastSender, ctx=ctx, get_one=fast)
    app.add_middleware(OcpiMiddleware, call_log=call_log)
    if access_log:  # outermost, so it times and sees everything the others do
        app.add_middleware(AccessLogMiddleware)
    return app


async def close(app: FastAPI) -> None:
    """What the app opened besides the engine (the fast path's reader)."""
    ctx: ServerContext = app.state.ctx
    while ctx.closers:
        await ctx.closers.pop()()
