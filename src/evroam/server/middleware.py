"""ASGI middleware: request/correlation ids, trailing and doubled slashes,
routing headers on functional answers, the call log, and the request body limit.

Written as plain ASGI (not BaseHTTPMiddleware) to stay off the hot path's back.
"""

from __future__ import annotations

import re
import time
import uuid

from evroam.ocpi.status import StatusCode
from evroam.server.responses import ocpi_response
from evroam.server.routing import header_bytes as routing_headers
from evroam.store.calllog import CallLog, CallRecord


class OcpiMiddleware:
    def __init__(self, app, call_log: CallLog | None = None, log_prefix: str = "/ocpi") -> None:
        self.app = app
        self.call_log = call_log
        self.log_prefix = log_prefix

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        # Partners' clients do not follow redirects during registration, so
        # both forms of a path are served directly. We publish endpoint URLs
        # with their trailing slash, so a client on 2.3.0's `{url}/{id}`
        # templates doubles it: served as well.
        if "//" in path:
            scope["path"] = path = _SLASHES.sub("/", path)
        if len(path) > 1 and path.endswith("/"):
            scope["path"] = path = path.rstrip("/") or "/"
        request_id, correlation_id = _ids(scope["headers"])
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["correlation_id"] = correlation_id
        logged = self.call_log is not None and path.startswith(self.log_prefix)
        req_body = bytearray()
        resp_body = bytearray()
        status_holder: list[int] = []
        cap = self.call_log.body_cap if self.call_log else 0
        ids = [(b"x-request-id", request_id.encode("latin-1")), (b"x-correlation-id", correlation_id.encode("latin-1"))]

        async def receive_wrapper():
            message = await receive()
            if logged and message["type"] == "http.request" and len(req_body) <= cap:
                req_body.extend(message.get("body", b""))
            return message

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status_holder.append(message["status"])
                hdrs = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _ID_HEADERS]
                hdrs += ids
                # Noted by authenticate_registered (or the fast path), on functional modules only.
                noted = state.get("routing_raw") or (
                    routing_headers(state["routing"]) if state.get("routing") is not None else None)
                if noted is not None:
                    hdrs = [(k, v) for k, v in hdrs if not k.lower().startswith(b"ocpi-")]
                    hdrs += noted
                message = {**message, "headers": hdrs}
            elif message["type"] == "http.response.body" and logged and len(resp_body) <= cap:
                resp_body.extend(message.get("body", b""))
            await send(message)

        started = time.perf_counter()
        error = None
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if logged:
                query = scope.get("query_string", b"").decode("latin-1")
                self.call_log.record(CallRecord(
                    direction="in",
                    method=scope["method"],
                    url=path + ("?" + query if query else ""),
                    duration_ms=(time.perf_counter() - started) * 1000,
                    http_status=status_holder[0] if status_holder else None,
                    ocpi_status=state.get("ocpi_status") or _status_code_of(resp_body),
                    party_id=state.get("party_id"),
                    request_id=request_id,
                    correlation_id=correlation_id,
                    # Redacted when the batch is written (CallLog.flush), off the request path.
                    request_body=bytes(req_body) or None,
                    response_body=bytes(resp_body) or None,
                    error=error,
                ))


_SLASHES = re.compile(r"//+")
_ID_HEADERS = (b"x-request-id", b"x-correlation-id")


def _ids(headers) -> tuple[str, str]:
    """X-Request-ID and X-Correlation-ID as the request gives them (the last
    of a repeated one), or new ones."""
    request_id = correlation_id = None
    for name, value in headers:
        name = name.lower()
        if name == b"x-request-id":
            request_id = value
        elif name == b"x-correlation-id":
            correlation_id = value
    return (request_id.decode("latin-1") if request_id else str(uuid.uuid4()),
            correlation_id.decode("latin-1") if correlation_id else str(uuid.uuid4()))


def _status_code_of(body: bytearray) -> int | None:
    # The envelope puts status_code after data; find it without parsing the body.
    idx = body.rfind(b'"status_code":')
    if idx < 0:
        return None
    digits = body[idx + 14: idx + 19].strip()
    num = bytes(d for d in digits if 48 <= d <= 57)
    return int(num) if num else None


class BodyLimit:
    """Refuses a request body larger than `max_bytes` with 413 and an OCPI
    envelope, for the OCPI and the admin API alike (it wraps both).

    A declared Content-Length is judged before a byte of the body is read; a
    chunked body is counted as it arrives and refused as soon as it passes the
    limit. So at most `max_bytes` of any request are ever held, which the
    handlers (they read whole bodies) would have held anyway.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        messages = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the app hears it as before
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send) -> None:
        # The rest of the body is never read, so the connection cannot carry another request.
        response = ocpi_response(status_code=StatusCode.CLIENT_ERROR, http_status=413,
                                 status_message=f"request body larger than {self.max_bytes} bytes "
                                                "(max_body_bytes)",
                                 headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope) -> int:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server rejects a malformed one before we see it
    return 0
