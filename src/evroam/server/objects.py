"""The shared shape of every object module's Sender and Receiver interface.

Module routers (locations.py, tariffs.py …) declare their paths and call these
handlers, so the rules live in one place:
- a partner writes only under a country_code/party_id of its own roles;
- the URL's cc/pid/id must equal the object's (2001 otherwise);
- PUT answers 201 when it creates and 200 when it replaces;
- a PATCH never creates and must carry last_updated;
- a rejected request writes nothing.
The Receiver's writes (PUT, PATCH, DELETE) are server/writes.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.responses import Response

from evroam.ocpi.base import NotJson, OcpiModel, error_text, load_json
from evroam.module import Module
from evroam.ocpi.status import OcpiError, StatusCode, invalid, not_found
from evroam.ocpi.types import ci_key, parse_datetime
from evroam.server.auth import authenticate_registered
from evroam.server.context import ServerContext
from evroam.server.paging import page_request, paged_response
from evroam.server.responses import ocpi_response
from evroam.server.routing import claimed, is_hub
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.store.tables import OURS


SAME = "same version as stored"
OLDER = "older than the stored version; kept"


def ctx_of(request: Request) -> ServerContext:
    return request.app.state.ctx


def speaks_for(party: Party, cc: str, pid: str) -> bool:
    """Is cc/pid one of `party`'s own roles? A Hub speaks for the parties
    behind it (it checked their OCPI-from, server/routing.honoured_from)."""
    key = (ci_key(cc), ci_key(pid))
    return is_hub(party) or any((ci_key(r["country_code"]), ci_key(r["party_id"])) == key
                                for r in party.roles or ())


def require_own_keys(party: Party, cc: str, pid: str) -> None:
    """A party reads and writes only under its own country_code/party_id."""
    if not speaks_for(party, cc, pid):
        raise not_found(f"{cc}/{pid} is not among the roles you registered with")


def check_caller(module: Module, party: Party, cc: str, pid: str) -> None:
    """May `party` read and write `module`'s objects under cc/pid at our
    Receiver? Its own roles only, unless the module says otherwise
    (Module.may_write). A Hub writes under any: it pushes what the parties
    behind it broadcast, each object under its owner's cc/pid
    (transport_and_format, "Broadcast Push")."""
    if module.may_write is not None:
        module.may_write(party, cc, pid)
    elif not is_hub(party):
        require_own_keys(party, cc, pid)


def check_identity(obj: OcpiModel, module: Module, cc: str, pid: str, oid: str) -> None:
    for field, expected in (("country_code", cc), ("party_id", pid), (module.id_field, oid)):
        value = getattr(obj, field)
        if ci_key(value) != ci_key(expected):
            raise invalid(f"{field}: {value!r} in the body differs from {expected!r} in the URL")


def respond(request: Request, data: Any = None, *, http_status: int = 200, data_json: bytes | None = None,
            headers: dict[str, str] | None = None) -> Response:
    # Routing headers are the middleware's (server/routing.py), on every answer.
    return ocpi_response(data, data_json=data_json, http_status=http_status, headers=headers)


# --- Sender ---------------------------------------------------------------------------


async def sender_list(request: Request, module: Module, *, ref_keys: set[str] | None = None,
                      date_from_required: bool = False) -> Response:
    await authenticate_registered(request)
    page = page_request(request, date_from_required=date_from_required)
    async with ctx_of(request).engine.connect() as conn:
        # Our stale objects are deleted ones (tombstones): gone for partners.
        docs, total = await repo.page(conn, module.id, OURS, offset=page.offset, limit=page.limit,
                                      date_from=page.date_from, date_to=page.date_to, ref_keys=ref_keys,
                                      include_stale=False)
    return paged_response(request, page, total, repo.splice(docs))


async def sender_get_one(request: Request, module: Module, object_id: str) -> str:
    """The stored document of one of our objects (404 when unknown)."""
    async with ctx_of(request).engine.connect() as conn:
        stored = await repo.find_any_owner(conn, module.id, object_id, OURS)
    if stored is None:
        raise not_found(f"unknown {module.id[:-1]} {object_id!r}")
    return stored.data


def caller_ref_keys(party: Party, request: Request | None = None) -> set[str]:
    """The ref_keys (cc+pid of a cdr_token) a partner may see: its own
    roles'. A Hub asks for the party behind it that its OCPI-from names (the
    Hub checked it is the caller's own role): that party's only, never all."""
    if request is not None and is_hub(party):
        frm = claimed(request).from_key
        return {frm[0] + frm[1]} if frm else set()
    return {ci_key(r["country_code"] + r["party_id"]) for r in party.roles or ()}


async def own_list(request: Request, module: Module, *, date_from_required: bool = False) -> Response:
    """Sender GET list of a module whose objects concern one partner each
    (Module.ref_of: Sessions, CDRs): only those of the caller's tokens."""
    auth = await authenticate_registered(request)
    page = page_request(request, date_from_required=date_from_required)
    async with ctx_of(request).engine.connect() as conn:
        docs, total = await repo.page(conn, module.id, OURS, offset=page.offset, limit=page.limit,
                                      date_from=page.date_from, date_to=page.date_to,
                                      ref_keys=caller_ref_keys(auth.party, request))
    return paged_response(request, page, total, repo.splice(docs))


# --- Receiver -------------------------------------------------------------------------------


async def receiver_get(request: Request, module: Module, cc: str, pid: str, oid: str,
                       type_: str = "") -> Response:
    auth = await authenticate_registered(request)
    check_caller(module, auth.party, cc, pid)
    async with ctx_of(request).engine.connect() as conn:
        stored = await repo.get(conn, ObjectKey(module.id, auth.party.id, cc, pid, oid, type_))
    if stored is None:
        raise not_found(f"unknown {module.id[:-1]} {cc}/{pid}/{oid}")
    return respond(request, data_json=stored.data.encode())


async def parse_patch(request: Request) -> dict[str, Any]:
    """A PATCH body: a JSON object that carries last_updated (2001 otherwise)."""
    try:
        patch = load_json(await request.body())
    except NotJson as exc:
        raise OcpiError(StatusCode.CLIENT_ERROR, f"request body is not valid JSON: {exc}", http_status=400) from None
    if not isinstance(patch, dict):
        raise invalid("PATCH body must be a JSON object")
    if "last_updated" not in patch:
        raise invalid("last_updated: required in every PATCH")
    try:
        parse_datetime(patch["last_updated"])
    except ValueError as exc:
        raise invalid(f"last_updated: {exc}") from None
    return patch


def validate_merged(model: type[OcpiModel], merged: dict[str, Any]) -> OcpiModel:
    try:
        return model.from_wire(merged)
    except ValidationError as exc:
        raise _PatchInvalid(exc) from None


class _PatchInvalid(OcpiError):
    def __init__(self, exc: ValidationError) -> None:
        super().__init__(StatusCode.INVALID_PARAMETERS, "PATCH makes the object invalid: " + error_text(exc))
