"""The optional access log: one `http.access` event per HTTP request.

The call log (store/calllog.py) keeps OCPI calls with their bodies in the
database; this is the operator's view of all traffic (admin API and
metrics included) in the process log. Probes (/health, /ready) are left
out: they arrive every few seconds and say nothing about traffic.
"""

from __future__ import annotations

import time

import structlog

from evroam.server.health import PATHS as PROBE_PATHS

log = structlog.get_logger("evroam.access")


class AccessLogMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # Read after the call: the inner middleware and the token check
            # fill the request state on the same scope.
            state = scope.get("state") or {}
            query = scope.get("query_string", b"").decode("latin-1")
            client = scope.get("client")
            log.info("http.access", method=scope["method"], path=scope["path"] + ("?" + query if query else ""),
                     status=status[0] if status else None,
                     duration_ms=round((time.perf_counter() - started) * 1000, 1),
                     partner=state.get("party_name"), request_id=state.get("request_id"),
                     client=client[0] if client else None)
