"""Pagination (transport_and_format.asciidoc, "Pagination"), without I/O.

date_from is inclusive and date_to exclusive, so one request's date_to can be
the next one's date_from without overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from evroam.ocpi.status import invalid
from evroam.ocpi.types import format_datetime, parse_datetime

DEFAULT_MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


def parse_page_request(params: dict[str, str], max_limit: int = DEFAULT_MAX_LIMIT,
                       date_from_required: bool = False) -> PageRequest:
    def _int(name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"-?\d{1,12}", raw):
            raise invalid(f"{name}: must be an integer, got {raw!r}")
        return int(raw)

    def _dt(name: str) -> datetime | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_datetime(raw)
        except ValueError as exc:
            raise invalid(f"{name}: {exc}") from None

    offset = _int("offset", 0)
    limit = _int("limit", max_limit)
    if offset < 0:
        raise invalid("offset: must not be negative")
    if limit <= 0:
        raise invalid("limit: must be positive")
    date_from, date_to = _dt("date_from"), _dt("date_to")
    if date_from_required and date_from is None:
        raise invalid("date_from: required for this list")
    return PageRequest(offset, min(limit, max_limit), date_from, date_to)


def next_link(request_url: str, page: PageRequest, total: int) -> str | None:
    """`<url>; rel="next"`, or None on the last page.

    The URL repeats every original filter with the new offset and limit.
    """
    next_offset = page.offset + page.limit
    if next_offset >= total:
        return None
    parts = urlsplit(request_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("offset", "limit")]
    if page.date_from is not None:
        query = [(k, v) for k, v in query if k != "date_from"] + [("date_from", format_datetime(page.date_from))]
    if page.date_to is not None:
        query = [(k, v) for k, v in query if k != "date_to"] + [("date_to", format_datetime(page.date_to))]
    query += [("offset", str(next_offset)), ("limit", str(page.limit))]
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return f'<{url}>; rel="next"'


_LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel\s*=\s*"?next"?', re.IGNORECASE)


def parse_next_link(header: str | None) -> str | None:
    if not header:
        return None
    m = _LINK_RE.search(header)
    return m.group(1) if m else None


def join_url(base: str, *segments: str) -> str:
    """Join path segments without doubling or dropping slashes (2.2.1 templates
    assume a trailing slash, 2.3.0 does not; we are tolerant both ways)."""
    url = base.rstrip("/")
    for seg in segments:
        seg = seg.strip("/")
        if seg:
            url += "/" + seg
    return url
