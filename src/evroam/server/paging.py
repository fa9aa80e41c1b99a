"""Server side of pagination: page parameters in, Link/X-Total-Count/X-Limit out."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from evroam.ocpi import headers as H
from evroam.ocpi.pagination import PageRequest, next_link, parse_page_request
from evroam.server.context import ServerContext
from evroam.server.responses import ocpi_response


def page_request(request: Request, date_from_required: bool = False) -> PageRequest:
    ctx: ServerContext = request.app.state.ctx
    return parse_page_request(dict(request.query_params), ctx.page_limit, date_from_required)


def paged_response(request: Request, page: PageRequest, total: int, data_json: bytes,
                   headers: dict[str, str] | None = None) -> Response:
    """`data_json` is the page's objects, already serialised once."""
    ctx: ServerContext = request.app.state.ctx
    # The Link is built from our public URL, never from the Host header a
    # proxy or hub may have rewritten.
    query = request.url.query
    public = ctx.url(request.url.path) + ("?" + query if query else "")
    out = {"X-Total-Count": str(total), "X-Limit": str(ctx.page_limit)}
    link = next_link(public, page, total)
    if link:
        out["Link"] = link
    if headers:
        out.update(headers)
    return ocpi_response(data_json=data_json, headers=out)


def routing_response_headers(request: Request) -> dict[str, str]:
    """A functional module's response swaps the request's OCPI-from/to headers."""
    h = request.headers
    out = {}
    if h.get(H.FROM_COUNTRY_CODE) and h.get(H.FROM_PARTY_ID):
        out["OCPI-to-country-code"] = h[H.FROM_COUNTRY_CODE]
        out["OCPI-to-party-id"] = h[H.FROM_PARTY_ID]
    if h.get(H.TO_COUNTRY_CODE) and h.get(H.TO_PARTY_ID):
        out["OCPI-from-country-code"] = h[H.TO_COUNTRY_CODE]
        out["OCPI-from-party-id"] = h[H.TO_PARTY_ID]
    return out
