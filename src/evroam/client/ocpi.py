"""OCPI client: envelope handling, token encoding, pagination, call logging."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from pydantic import ValidationError

from evroam.ocpi import headers as H
from evroam.ocpi.base import OcpiModel, dumps, error_text
from evroam.ocpi.envelope import Envelope
from evroam.ocpi.headers import Routing
from evroam.ocpi.pagination import parse_next_link
from evroam.ocpi.status import StatusCode
from evroam.store.calllog import CallLog, CallRecord, redact

log = structlog.get_logger(__name__)


class PartnerError(Exception):
    """A partner call that did not give us what we needed.

    `status_code` is the OCPI code that best describes it to a third party
    (3001 for "cannot use the client's API").
    """

    def __init__(self, message: str, status_code: int = StatusCode.CLIENT_API_UNUSABLE,
                 http_status: int | None = None, partner_status: int | None = None,
                 maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = int(status_code)
        self.http_status = http_status
        self.partner_status = partner_status
        # True when the request may have reached the partner and been acted on
        # even though we got no usable answer (a timeout, a dropped connection,
        # a proxy's error page). Not when we never connected.
        self.maybe_applied = maybe_applied


class PartnerUnreachable(PartnerError):
    pass


@dataclass(slots=True)
class OcpiResult:
    http_status: int
    envelope: Envelope
    headers: dict[str, str]

    @property
    def status_code(self) -> int:
        return self.envelope.status_code

    @property
    def data(self) -> Any:
        return self.envelope.data

    def ok(self) -> bool:
        return 200 <= self.http_status < 300 and 1000 <= self.envelope.status_code < 2000


class OcpiClient:
    def __init__(self, session: aiohttp.ClientSession, call_log: CallLog | None = None) -> None:
        self.session = session
        self.call_log = call_log

    async def request(
        self,
        method: str,
        url: str,
        token: str,
        *,
        body: OcpiModel | Any = None,
        party_id: int | None = None,
        raw_token: bool = False,
        routing: Routing | None = None,
        correlation_id: str | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> OcpiResult:
        request_id = H.new_id()
        hdrs = {
            "Authorization": H.raw_token_header(token) if raw_token else H.encode_token(token),
            "X-Request-ID": request_id,
            "X-Correlation-ID": correlation_id or H.new_id(),
            "Accept": "application/json",
        }
        if routing is not None:
            hdrs.update(routing.headers())
        payload: bytes | None = content
        if body is not None:
            payload = body.to_json_bytes() if isinstance(body, OcpiModel) else dumps(body)
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        logged_url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
        rec = CallRecord(direction="out", method=method, url=logged_url, duration_ms=0.0, party_id=party_id,
                         request_id=request_id, correlation_id=hdrs["X-Correlation-ID"])
        cap = self.call_log.body_cap if self.call_log else 16384
        rec.request_body = redact(payload, cap)
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, data=payload, headers=hdrs, params=params,
                                            allow_redirects=False) as resp:
                raw = await resp.read()
                rec.http_status = resp.status
                rec.response_body = redact(raw, cap)
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            never_sent = isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
            raise PartnerUnreachable(f"{method} {url} failed: {rec.error}",
                                     maybe_applied=not never_sent) from None
        finally:
            rec.duration_ms = (time.perf_counter() - started) * 1000
            if self.call_log is not None:
                self.call_log.record(rec)
        try:
            envelope = Envelope.model_validate_json(raw)
        except ValidationError as exc:
            rec.error = "not an OCPI envelope: " + error_text(exc)
            raise PartnerError(f"{method} {url} answered HTTP {resp.status} without a valid OCPI envelope "
                               f"({error_text(exc)[:200]})", http_status=resp.status,
                               maybe_applied=True) from None
        rec.ocpi_status = envelope.status_code
        return OcpiResult(resp.status, envelope, resp_headers)

    async def get_ok(self, url: str, token: str, **kw: Any) -> OcpiResult:
        result = await self.request("GET", url, token, **kw)
        if not result.ok():
            raise PartnerError(
                f"GET {url} answered HTTP {result.http_status}, OCPI {result.status_code}"
                f" {result.envelope.status_message or ''}".rstrip(),
                http_status=result.http_status, partner_status=result.status_code,
            )
        return result

    async def paginate(self, url: str, token: str, *, params: dict[str, str] | None = None,
                       **kw: Any) -> AsyncIterator[list[Any]]:
        """Yield one page of raw objects at a time, following `Link` to the end.

        Pages are yielded, not accumulated, so a pull never holds the whole set.
        """
        next_url: str | None = url
        next_params = params
        while next_url:
            result = await self.get_ok(next_url, token, params=next_params, **kw)
            data = result.data
            if isinstance(data, dict):
                # A peer answering a list with one object: tolerate and record it.
                log.warning("client.list_was_object", url=next_url)
                data = [data]
            yield list(data or [])
            next_url = parse_next_link(result.headers.get("link"))
            next_params = None  # the Link URL already carries every filter
