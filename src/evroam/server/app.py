"""The FastAPI application of a node."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware

from evroam.module import REGISTRY, Module
from evroam.ocpi.versions import Endpoint, InterfaceRole, VersionNumber
from evroam.server import errors, health
from evroam.server.access import AccessLogMiddleware
from evroam.server.body import UnknownFieldLog
from evroam.server.context import ServerContext
from evroam.server.fastpath import FastSender
from evroam.server.middleware import BodyLimit, OcpiMiddleware
from evroam.server.routing import interface_path
from evroam.store.calllog import CallLog

V = VersionNumber.V2_2_1.value


def interfaces_for(ctx: ServerContext) -> list[tuple[str, InterfaceRole, APIRouter]]:
    """The (module, interface, router) our roles implement, in registry order."""
    wanted: list[tuple[str, InterfaceRole, APIRouter]] = []
    for role, _, _ in ctx.roles:
        for module, iface in REGISTRY.interfaces_of(role).items():
            m = REGISTRY[module]
            router = m.sender if iface == InterfaceRole.SENDER else m.receiver
            if router is not None and all(w[:2] != (module, iface) for w in wanted):
                wanted.append((module, iface, router))
    return wanted


def create_app(ctx: ServerContext, call_log: CallLog | None = None, *, access_log: bool = False,
               inner: Sequence[Middleware] = ()) -> FastAPI:
    """`inner`: middleware run inside the body limit, before FastAPI's
    routing (a Hub's layer, hub/layer.py)."""
    app = FastAPI(title="evroam", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.state.ctx = ctx
    app.state.engine = ctx.engine
    app.state.unknown_fields = UnknownFieldLog()
    errors.install(app)
    app.include_router(health.router)
    for m in REGISTRY.values():  # modules served outside the per-role interfaces (versions, credentials)
        if not m.interfaces and m.sender is not None:
            app.include_router(m.sender)
    ctx.endpoints = []
    fast: dict[str, Module] = {}
    for module, iface, router in interfaces_for(ctx):
        if not router.routes:  # an interface with nothing to serve is not published
            continue
        path = interface_path(V, module, iface)
        app.include_router(router, prefix=path)
        if iface == InterfaceRole.SENDER and REGISTRY[module].fast_get_one:
            fast[path] = REGISTRY[module]
        ctx.endpoints.append(Endpoint(identifier=module, role=iface, url=ctx.endpoint_url(path)))
    for mw in reversed(inner):
        app.add_middleware(mw.cls, *mw.args, **mw.kwargs)
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
