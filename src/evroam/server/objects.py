"""The shared shape of every object module's Sender and Receiver interface.

Module routers (locations.py, tariffs.py …) declare their paths and call these
handlers, so the rules live in one place:
- a partner writes only under a country_code/party_id of its own roles;
- the URL's cc/pid/id must equal the object's (2001 otherwise);
- PUT answers 201 when it creates and 200 when it replaces;
- a PATCH never creates and must carry last_updated;
- a rejected request writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from evroam.ocpi.base import NotJson, OcpiModel, error_text, load_json
from evroam.ocpi.modules import ObjectModule
from evroam.ocpi.status import OcpiError, StatusCode, invalid, not_found
from evroam.ocpi.types import ci_key, parse_datetime
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.context import ServerContext
from evroam.server.paging import page_request, paged_response
from evroam.server.responses import ocpi_response
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.store.tables import OURS


SAME = "same version as stored"
OLDER = "older than the stored version; kept"


def ctx_of(request: Request) -> ServerContext:
    return request.app.state.ctx


def require_own_keys(party: Party, cc: str, pid: str) -> None:
    """A party reads and writes only under its own country_code/party_id."""
    key = (ci_key(cc), ci_key(pid))
    if not any((ci_key(r["country_code"]), ci_key(r["party_id"])) == key for r in party.roles or ()):
        raise not_found(f"{cc}/{pid} is not among the roles you registered with")


def check_identity(obj: OcpiModel, module: ObjectModule, cc: str, pid: str, oid: str) -> None:
    for field, expected in (("country_code", cc), ("party_id", pid), (module.id_field, oid)):
        value = getattr(obj, field)
        if ci_key(value) != ci_key(expected):
            raise invalid(f"{field}: {value!r} in the body differs from {expected!r} in the URL")


def respond(request: Request, data: Any = None, *, http_status: int = 200, data_json: bytes | None = None,
            headers: dict[str, str] | None = None) -> Response:
    # Routing headers are the middleware's (server/routing.py), on every answer.
    return ocpi_response(data, data_json=data_json, http_status=http_status, headers=headers)


# --- Sender ---------------------------------------------------------------------------


async def sender_list(request: Request, module: ObjectModule, *, ref_keys: set[str] | None = None,
                      date_from_required: bool = False) -> Response:
    await authenticate_registered(request)
    page = page_request(request, date_from_required=date_from_required)
    async with ctx_of(request).engine.connect() as conn:
        # Our stale objects are deleted ones (tombstones): gone for partners.
        docs, total = await repo.page(conn, module.id, OURS, offset=page.offset, limit=page.limit,
                                      date_from=page.date_from, date_to=page.date_to, ref_keys=ref_keys,
                                      include_stale=False)
    return paged_response(request, page, total, repo.splice(docs))


def serve_get_one_fast(router: APIRouter, module: ObjectModule) -> None:
    """Say that `router`'s GET /{id} answers `sender_get_one(module)` as it
    is: create_app then answers it on the fast path first (server/fastpath.py),
    and the route answers whatever that path leaves to it."""
    router.fast_get_one = module  # type: ignore[attr-defined]


def fast_get_one_of(router: APIRouter) -> ObjectModule | None:
    return getattr(router, "fast_get_one", None)


async def sender_get_one(request: Request, module: ObjectModule, object_id: str) -> str:
    """The stored document of one of our objects (404 when unknown)."""
    async with ctx_of(request).engine.connect() as conn:
        stored = await repo.find_any_owner(conn, module.id, object_id, OURS)
    if stored is None:
        raise not_found(f"unknown {module.id[:-1]} {object_id!r}")
    return stored.data


# --- Receiver -------------------------------------------------------------------------------


async def receiver_get(request: Request, module: ObjectModule, cc: str, pid: str, oid: str,
                       type_: str = "") -> Response:
    auth = await authenticate_registered(request)
    require_own_keys(auth.party, cc, pid)
    async with ctx_of(request).engine.connect() as conn:
        stored = await repo.get(conn, ObjectKey(module.id, auth.party.id, cc, pid, oid, type_))
    if stored is None:
        raise not_found(f"unknown {module.id[:-1]} {cc}/{pid}/{oid}")
    return respond(request, data_json=stored.data.encode())


async def receiver_put(request: Request, module: ObjectModule, cc: str, pid: str, oid: str,
                       type_: str = "", ref_key: str | None = None) -> tuple[Response, OcpiModel, Party]:
    auth = await authenticate_registered(request)
    require_own_keys(auth.party, cc, pid)
    obj = await parse_body(request, module.model)
    check_identity(obj, module, cc, pid, oid)
    if module.typed and getattr(obj, "type").value != type_:
        raise invalid(f"type: {getattr(obj, 'type').value!r} in the body differs from {type_!r} in the URL")
    key = ObjectKey(module.id, auth.party.id, cc, pid, oid, type_)
    data = obj.to_json_bytes().decode()
    async with ctx_of(request).engine.begin() as conn:
        stored = await repo.get(conn, key, for_update=True)
        # Delivery is at-least-once, so a receiver must be idempotent: the same
        # version again is a no-op, and an older one never overwrites a newer
        # one (peers replaying queued pushes after an outage did exactly that).
        if stored is not None and (stored.last_updated > obj.last_updated or stored.data == data):
            request.state.applied = False
            message = SAME if stored.data == data else OLDER
            return ocpi_response(status_message=message), obj, auth.party
        _, created = await repo.save(conn, key, stored, data, obj.last_updated, ref_key=ref_key)
    request.state.applied = True
    return respond(request, http_status=201 if created else 200), obj, auth.party


def applied(request: Request) -> bool:
    """False when the last receiver_put or receiver_patch kept the stored version (no hook then)."""
    return getattr(request.state, "applied", True)


async def receiver_patch(request: Request, module: ObjectModule, cc: str, pid: str, oid: str,
                         type_: str = "", ref_key_of=None, merge=None) -> tuple[Response, OcpiModel, Party]:  # noqa: ANN001
    """PATCH: the named fields replace the stored ones; `merge(stored, patch)`
    overrides that for modules with special rules (Session charging_periods)."""
    auth = await authenticate_registered(request)
    require_own_keys(auth.party, cc, pid)
    patch = await parse_patch(request)
    key = ObjectKey(module.id, auth.party.id, cc, pid, oid, type_)
    async with ctx_of(request).engine.begin() as conn:
        stored = await repo.get(conn, key, for_update=True)
        if stored is None:
            # A PATCH never creates: the client is to GET, then PUT.
            raise not_found(f"unknown {module.id[:-1]} {cc}/{pid}/{oid}: PUT it first")
        if parse_datetime(patch["last_updated"]) < stored.last_updated:
            # An older PATCH is a no-op, as an older PUT is: a late PATCH must
            # not re-validate a token that a newer version blocked.
            request.state.applied = False
            return (ocpi_response(status_message=OLDER),
                    module.model.from_wire(stored.data), auth.party)
        current = json.loads(stored.data)
        merged = merge(current, patch) if merge else {**current, **patch}
        obj = validate_merged(module.model, merged)
        check_identity(obj, module, cc, pid, oid)
        await repo.save(conn, key, stored, obj.to_json_bytes().decode(), obj.last_updated,
                        ref_key=ref_key_of(obj) if ref_key_of else None)
    request.state.applied = True
    return respond(request), obj, auth.party


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


async def receiver_delete(request: Request, module: ObjectModule, cc: str, pid: str, oid: str) -> Response:
    auth = await authenticate_registered(request)
    require_own_keys(auth.party, cc, pid)
    async with ctx_of(request).engine.begin() as conn:
        stored = await repo.get(conn, ObjectKey(module.id, auth.party.id, cc, pid, oid))
        if stored is None:
            raise not_found(f"unknown {module.id[:-1]} {cc}/{pid}/{oid}")
        await repo.delete(conn, stored.pk)
    return respond(request)
