"""OCPI client: envelope handling, token encoding, pagination, call logging."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlencode, urlsplit

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

M = TypeVar("M", bound=OcpiModel)

# How much of a partner's non-OCPI body an error message quotes: enough to
# show `{"detail": "Not authenticated"}` or a proxy's title, never a page.
BODY_EXCERPT = 200


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


class UnusableReply(ValueError):
    """An OCPI answer whose `data` is not the one object we asked for; the
    message says what it was instead."""


class QuirkLog:
    """A partner's departures from the spec that we cope with, logged once
    per partner and quirk (per process), so a quirk on every call does not
    flood the log."""

    def __init__(self) -> None:
        self._seen: set[tuple[int | None, str]] = set()
        # Operators know partners by name; callers that hold the party say it (OcpiClient.request).
        self.names: dict[int, str] = {}

    def note(self, party_id: int | None, quirk: str, **details: object) -> None:
        if (party_id, quirk) in self._seen:
            return
        self._seen.add((party_id, quirk))
        name = self.names.get(party_id) if party_id is not None else None
        who = {"partner": name} if name else {"party_id": party_id}
        log.warning("partner.quirk", quirk=quirk, **who, **details)


@dataclass(slots=True)
class OcpiResult:
    http_status: int
    envelope: Envelope
    headers: dict[str, str]
    url: str = ""
    party_id: int | None = None
    quirks: QuirkLog | None = None

    @property
    def status_code(self) -> int:
        return self.envelope.status_code

    @property
    def data(self) -> Any:
        return self.envelope.data

    def ok(self) -> bool:
        return 200 <= self.http_status < 300 and 1000 <= self.envelope.status_code < 2000

    def single(self) -> Any:
        """`data` where one object is expected. A one-element list holding an
        object is unwrapped: a known peer answers GET-one, PUT/PATCH,
        AuthorizationInfo and CommandResponse as `[obj]`."""
        data = self.envelope.data
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            if self.quirks is not None:
                self.quirks.note(self.party_id, "single_object_as_list", url=self.url)
            return data[0]
        return data

    def one(self, model: type[M]) -> M:
        """`data` as one `model`, or UnusableReply saying what it was instead."""
        data = self.single()
        if not isinstance(data, dict):
            raise UnusableReply(f"data is {_shape(data)}, not one {model.__name__}")
        try:
            return model.from_wire(data)
        except ValidationError as exc:
            raise UnusableReply(f"invalid {model.__name__}: {error_text(exc)[:300]}") from None


def _shape(data: Any) -> str:
    if data is None:
        return "missing"
    if isinstance(data, list):
        return f"a list of {len(data)} item{'s' if len(data) != 1 else ''}"
    return f"a {type(data).__name__}"


def body_excerpt(raw: bytes, limit: int = BODY_EXCERPT) -> str:
    """A partner's body as one short printable line, for an error message."""
    text = re.sub(r"[\x00-\x1f\x7f\s]+", " ", raw[:limit * 4].decode("utf-8", "replace")).strip()
    if not text:
        return "(empty body)"
    return text if len(text) <= limit and len(raw) <= limit * 4 else text[:limit].rstrip() + "…"


def _no_envelope(method: str, url: str, status: int, raw: bytes, exc: ValidationError) -> str:
    # A 403 `{"detail": ...}` is an HTTP error and is reported as one: status
    # and body. Only a 2xx without an envelope is a malformed OCPI answer.
    if 200 <= status < 300:
        return (f"{method} {url} answered HTTP {status} without a valid OCPI envelope "
                f"({error_text(exc)[:200]}): {body_excerpt(raw)}")
    try:
        phrase = " " + HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"{method} {url} answered HTTP {status}{phrase}: {body_excerpt(raw)}"


class OcpiClient:
    def __init__(self, session: aiohttp.ClientSession, call_log: CallLog | None = None) -> None:
        self.session = session
        self.call_log = call_log
        self.quirks = QuirkLog()

    async def request(
        self,
        method: str,
        url: str,
        token: str,
        *,
        body: OcpiModel | Any = None,
        party_id: int | None = None,
        partner: str | None = None,
        raw_token: bool = False,
        routing: Routing | None = None,
        correlation_id: str | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> OcpiResult:
        if partner and party_id is not None:
            self.quirks.names[party_id] = partner
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
            message = _no_envelope(method, url, resp.status, raw, exc)
            rec.error = message
            # A 4xx is the partner refusing the request; anything else (a
            # proxy's 502 page, a 200 without an envelope) may have been acted on.
            raise PartnerError(message, http_status=resp.status,
                               maybe_applied=not 400 <= resp.status < 500) from None
        rec.ocpi_status = envelope.status_code
        if method != "GET" and isinstance(envelope.data, list):
            # No PUT, PATCH, POST or DELETE answer is a list in OCPI; those
            # whose data we read unwrap it (OcpiResult.single), the others ignore it.
            self.quirks.note(party_id, "single_object_as_list", url=url)
        return OcpiResult(resp.status, envelope, resp_headers, url, party_id, self.quirks)

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
                       paging: Paging | None = None, **kw: Any) -> AsyncIterator[list[Any]]:
        """Yield one page of raw objects at a time, following `Link` to the end.

        Pages are yielded, not accumulated, so a pull never holds the whole set.
        Where `Link` cannot be used (absent while X-Total-Count says more, not
        under `url`, or failing), we page on from `url` with the original
        `params` plus offset/limit, and say why in `paging.fallback`.
        """
        paging = paging if paging is not None else Paging()
        party_id = kw.get("party_id")
        next_url, next_params, by_link = url, params, False
        limit: int | None = None
        first: Any = None  # the previous page's first object
        while True:
            try:
                result = await self.get_ok(next_url, token, params=next_params, **kw)
            except PartnerError as exc:
                if not by_link:
                    raise
                self._fall_back(paging, party_id, f"following its Link failed ({exc.message})", next_url)
                next_url, next_params, by_link = url, _offset_params(params, paging.received, limit), False
                continue
            page = self._page_of(result)
            if page and paging.fallback is not None and page[0] == first:
                # Paging on by offset with a partner that ignores it would
                # loop, or end with a set that looks complete and is not.
                raise PartnerError(f"GET {next_url} ignores offset: the page at offset {paging.received} "
                                   "repeats the previous one", http_status=result.http_status)
            first = page[0] if page else None
            paging.pages += 1
            paging.received += len(page)
            paging.total = _int_header(result.headers.get(H.TOTAL_COUNT))
            limit = _int_header(result.headers.get(H.LIMIT)) or limit or len(page) or None
            if page:
                yield page
            elif paging.total is not None and paging.received < paging.total:
                raise PartnerError(f"GET {next_url} returned no objects at offset {paging.received}, "
                                   f"though X-Total-Count is {paging.total}", http_status=result.http_status)
            else:
                return
            link = parse_next_link(result.headers.get(H.LINK))
            if link is not None and _under(link, url) and paging.fallback is None:
                next_url, next_params, by_link = link, None, True  # the Link URL carries every filter
                continue
            more = paging.received < paging.total if paging.total is not None else link is not None
            if not more:
                return
            if paging.fallback is None:
                why = ("its Link is not under the endpoint URL" if link is not None
                       else "it sent no Link though X-Total-Count says there is more")
                self._fall_back(paging, party_id, why, link)
            next_url, next_params, by_link = url, _offset_params(params, paging.received, limit), False

    def _page_of(self, result: OcpiResult) -> list[Any]:
        data = result.data
        if isinstance(data, dict):
            # A peer answering a list with one object: tolerate and record it.
            self.quirks.note(result.party_id, "list_was_object", url=result.url)
            return [data]
        return list(data or [])

    def _fall_back(self, paging: Paging, party_id: int | None, why: str, link: str | None) -> None:
        # Our token goes only to the endpoint the partner registered: a Link
        # elsewhere (another host, scheme or path) is not followed.
        paging.fallback = f"paged with offset/limit against X-Total-Count: {why}"
        self.quirks.note(party_id, "unusable_link", why=why, link=link)


@dataclass(slots=True)
class Paging:
    """How a paginated GET went, for the caller's report."""

    pages: int = 0
    received: int = 0
    total: int | None = None  # the latest X-Total-Count
    fallback: str | None = None  # why, if we stopped following Link


def _int_header(value: str | None) -> int | None:
    try:
        n = int((value or "").strip())
    except ValueError:
        return None
    return n if n >= 0 else None


def _offset_params(params: dict[str, str] | None, offset: int, limit: int | None) -> dict[str, str]:
    out = {k: v for k, v in (params or {}).items() if k not in ("offset", "limit")}
    out["offset"] = str(offset)
    if limit:
        out["limit"] = str(limit)
    return out


def _origin(u: SplitResult) -> tuple[str, str | None, int | None]:
    scheme = u.scheme.lower()
    return scheme, u.hostname, u.port or {"http": 80, "https": 443}.get(scheme)


def _under(link: str, base: str) -> bool:
    """Is `link` on the same scheme, host, port and endpoint path as `base`?"""
    try:
        a, b = urlsplit(link), urlsplit(base)
        same_origin = _origin(a) == _origin(b)
    except ValueError:  # an invalid port
        return False
    path, root = a.path.rstrip("/"), b.path.rstrip("/")
    return same_origin and (path == root or path.startswith(root + "/"))
