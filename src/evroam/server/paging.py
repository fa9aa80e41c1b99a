"""Server side of pagination: page parameters in, Link/X-Total-Count/X-Limit out."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

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
    # proxy or hub may have rewritten, and keeps the trailing slash of the
    # path as asked (the published endpoint URL has one).
    query = request.url.query
    slash = "/" if request.scope.get("raw_path", b"").endswith(b"/") else ""
    public = ctx.url(request.url.path) + slash + ("?" + query if query else "")
    out = {"X-Total-Count": str(total), "X-Limit": str(ctx.page_limit)}
    link = next_link(public, page, total)
    if link:
        out["Link"] = link
    if headers:
        out.update(headers)
    return ocpi_response(data_json=data_json, headers=out)

