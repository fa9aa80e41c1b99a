"""The admin REST API: how the operator's own systems feed us their objects
and read what partners sent. Mounted at /admin on the node's HTTP app when an
admin token is configured (admin/app.py); OpenAPI docs at /admin/docs.

Answers are shaped like OCPI envelopes ({data, status_code, status_message,
timestamp}) with a meaningful HTTP status: 400 for a bad request (2001 names
the field; 2003 for a Session or CDR at a place we do not have), 401 without
the admin token, 404 for unknown things, 409 for a change that may not be
published.

Routers in this package get the node from `request.app.state.node`; the
helpers below keep their answers alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from evroam.ocpi.base import NotJson, OcpiModel, error_text, load_json
from evroam.ocpi.status import OcpiError, StatusCode
from evroam.server.responses import ocpi_response

if TYPE_CHECKING:
    from evroam.admin.service import NodeService
    from evroam.sync.own import Refused

M = TypeVar("M", bound=OcpiModel)


class Envelope(BaseModel):
    """Every admin answer, errors included (data is absent on errors)."""

    data: Any = None
    status_code: int
    status_message: str | None = None
    timestamp: str


# What each status means on every admin route that answers it; `answers`
# builds the `responses=` of a route from these, so /admin/openapi.json lists
# what the route really answers (a test calls each route to check).
_MEANING = {
    200: "Success.",
    201: "Created.",
    400: "The request is wrong: the body is not JSON (2000), or a field or parameter is invalid (2001; the "
         "message names it).",
    401: "Missing or wrong admin token (2000).",
    404: "An unknown partner, object or request (2000).",
    409: "The change may not be made as asked (2000), for example an older last_updated than the stored one.",
}


def answers(*codes: int, **meaning: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers these statuses; `ok=` (200) or
    `created=` (201) say what success means there."""
    said = {200: meaning.get("ok"), 201: meaning.get("created")}
    return {code: {"model": Envelope, "description": said.get(code) or _MEANING[code]} for code in codes}


def node_of(request: Request) -> NodeService:
    return request.app.state.node


def ok(data: Any = None, *, http_status: int = 200, data_json: bytes | None = None,
       headers: dict[str, str] | None = None, message: str | None = None) -> Response:
    return ocpi_response(data, data_json=data_json, http_status=http_status, headers=headers,
                         status_message=message)


def bad_request(message: str) -> OcpiError:
    """The request itself is wrong (a field, a parameter): HTTP 400, 2001."""
    return OcpiError(StatusCode.INVALID_PARAMETERS, message, http_status=400)


def not_found(message: str) -> OcpiError:
    return OcpiError(StatusCode.CLIENT_ERROR, message, http_status=404)


def unknown_place(exc: Exception) -> OcpiError:
    """A Session or CDR at a Location, EVSE or Connector we do not have: the
    request is wrong (400), and 2003 says which kind of wrong."""
    return OcpiError(StatusCode.UNKNOWN_LOCATION, str(exc), http_status=400)


def conflict(message: str) -> OcpiError:
    return OcpiError(StatusCode.CLIENT_ERROR, message, http_status=409)


def refused(exc: Refused) -> OcpiError:
    """A change of ours the owner rules refuse (sync/own.py): 409 when it
    conflicts with what is stored, else 400 (2001)."""
    return conflict(str(exc)) if exc.conflict else bad_request(str(exc))


async def parse_json(request: Request) -> Any:
    try:
        return load_json(await request.body())
    except NotJson as exc:
        raise OcpiError(StatusCode.CLIENT_ERROR, f"request body is not valid JSON: {exc}", http_status=400) from None


async def parse_object(request: Request, model: type[M]) -> M:
    """An OCPI object from the body: 400 + 2000 for broken JSON, 400 + 2001
    naming each failing field for an invalid object (never a framework 422)."""
    doc = await parse_json(request)
    if not isinstance(doc, dict):
        raise bad_request(f"body: expected one {model.__name__} object")
    try:
        return model.from_wire(doc)
    except ValidationError as exc:
        raise bad_request(error_text(exc)) from None


def create_admin_app(node: NodeService):
    from evroam.admin.app import create_admin_app as create

    return create(node)
