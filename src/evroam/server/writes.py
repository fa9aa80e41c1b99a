"""The Receiver's one write path: every PUT, PATCH and DELETE a partner sends
to an object module ends here.

`write` is the transaction: read the stored version with a lock, let the
module's merge judge the message against it, save what results. It returns
what happened as a `Written` (created, replaced, unchanged, older and kept),
never as request state. A module's special rules are its `Merger`: the
generic PUT and PATCH ones are here (a PATCH merges with `Module.merge`, so
Sessions append charging periods), and Locations bring their own, level by
level (modules/locations/receiver.py). `settle` then fires the module's
Received hook for a stored version only and builds the answer, in one place.

Delivery is at-least-once, so a receiver must be idempotent: the same version
again is a no-op, and an older one never overwrites a newer one (peers
replaying queued pushes after an outage did exactly that).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from types import EllipsisType
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.responses import Response

from evroam.hooks import received
from evroam.module import Merge, Module
from evroam.ocpi.base import OcpiModel
from evroam.ocpi.status import invalid, not_found
from evroam.ocpi.types import parse_datetime
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import OLDER, SAME, check_identity, ctx_of, parse_patch, check_caller, validate_merged
from evroam.server.responses import ocpi_response
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey, Stored
from evroam.store.parties import Party


class Outcome(Enum):
    CREATED = "created"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"  # the same version again: nothing written
    OLDER_KEPT = "older_kept"  # older than the stored version, which stays
    DELETED = "deleted"


_STORED = (Outcome.CREATED, Outcome.REPLACED)


@dataclass(slots=True, frozen=True)
class Merged:
    """What a merge made of a message and the stored version."""

    obj: OcpiModel  # the object that results (kept: the message's or the stored one)
    data: str  # its document
    kept: Outcome | None = None  # UNCHANGED or OLDER_KEPT: nothing to write
    note: str | None | EllipsisType = ...  # the stored note to write; `...` leaves it
    # Whether the object the message addresses is new, where that is not the
    # stored row (an EVSE PUT into a stored Location); None: whether the row is.
    created: bool | None = None


# Called inside the transaction with the locked stored version (None when
# there is none); raises an OcpiError to refuse the message, writing nothing.
Merger = Callable[[Stored | None], Merged]


@dataclass(slots=True, frozen=True)
class Written:
    outcome: Outcome
    obj: OcpiModel | None
    party: Party

    @property
    def stored(self) -> bool:
        return self.outcome in _STORED


async def write(engine: AsyncEngine, module: Module, key: ObjectKey, party: Party, merger: Merger, *,
                then: Callable[[AsyncConnection, int, bool], Awaitable[None]] | None = None) -> Written:
    """`then(conn, pk, created)`: more to write in the same transaction when
    the message was stored (a Hub queues its broadcast)."""
    async with engine.begin() as conn:
        stored = await repo.get(conn, key, for_update=True)
        merged = merger(stored)
        if merged.kept is None:
            pk, created = await repo.save(conn, key, stored, merged.data, merged.obj.last_updated,
                                          ref_key=module.ref(merged.obj), note=merged.note)
            if then is not None:
                await then(conn, pk, created)
            created = created if merged.created is None else merged.created
            return Written(Outcome.CREATED if created else Outcome.REPLACED, merged.obj, party)
        if stored is not None and merged.note is not ... and merged.note != stored.note:
            # Nothing to show, but a late message must be judged against this note.
            await repo.save(conn, key, stored, merged.data, merged.obj.last_updated,
                            ref_key=module.ref(merged.obj), note=merged.note)
    return Written(merged.kept, merged.obj, party)


def answer(written: Written) -> Response:
    """The HTTP answer to a Receiver write."""
    if written.outcome is Outcome.CREATED:
        return ocpi_response(http_status=201)
    if written.outcome is Outcome.UNCHANGED:
        return ocpi_response(status_message=SAME)
    if written.outcome is Outcome.OLDER_KEPT:
        return ocpi_response(status_message=OLDER)
    return ocpi_response()


async def settle(request: Request, module: Module, written: Written) -> Response:
    """Fire the module's Received hook for a stored version (a message that
    changed nothing fires none), then answer."""
    if written.stored:
        await ctx_of(request).hooks.fire(received(module.id), written.obj, written.party)
    return answer(written)


# --- the generic merges -----------------------------------------------------------------------


def put_merger(obj: OcpiModel) -> Merger:
    """A PUT replaces the stored object, unless it is the same or older."""
    data = obj.to_json_bytes().decode()

    def merge(stored: Stored | None) -> Merged:
        if stored is not None and stored.data == data:
            return Merged(obj, data, Outcome.UNCHANGED)
        if stored is not None and stored.last_updated > obj.last_updated:
            return Merged(obj, data, Outcome.OLDER_KEPT)
        return Merged(obj, data)

    return merge


def patch_merger(module: Module, key: ObjectKey, patch: dict[str, Any], merge: Merge | None) -> Merger:
    """The named fields replace the stored ones; `merge(stored, patch)`
    overrides that (Module.merge: Session charging_periods are appended)."""

    def merged(stored: Stored | None) -> Merged:
        if stored is None:
            # A PATCH never creates: the client is to GET, then PUT.
            raise not_found(f"unknown {module.id[:-1]} {key.country_code}/{key.party_id}/{key.object_id}: "
                            "PUT it first")
        if parse_datetime(patch["last_updated"]) < stored.last_updated:
            # An older PATCH is a no-op, as an older PUT is: a late PATCH must
            # not re-validate a token that a newer version blocked.
            return Merged(module.model.from_wire(stored.data), stored.data, Outcome.OLDER_KEPT)
        current = json.loads(stored.data)
        obj = validate_merged(module.model, merge(current, patch) if merge else {**current, **patch})
        check_identity(obj, module, key.country_code, key.party_id, key.object_id)
        return Merged(obj, obj.to_json_bytes().decode())

    return merged


# --- the Receiver handlers of the generic modules ---------------------------------------------


async def receive_put(request: Request, module: Module, cc: str, pid: str, oid: str,
                      type_: str = "") -> Written:
    auth = await authenticate_registered(request)
    check_caller(module, auth.party, cc, pid)
    obj = await parse_body(request, module.model)
    check_identity(obj, module, cc, pid, oid)
    if module.typed and obj.type.value != type_:
        raise invalid(f"type: {obj.type.value!r} in the body differs from {type_!r} in the URL")
    key = ObjectKey(module.id, auth.party.id, cc, pid, oid, type_)
    return await write(ctx_of(request).engine, module, key, auth.party, put_merger(obj))


async def receiver_put(request: Request, module: Module, cc: str, pid: str, oid: str,
                       type_: str = "") -> Response:
    return await settle(request, module, await receive_put(request, module, cc, pid, oid, type_))


async def receiver_patch(request: Request, module: Module, cc: str, pid: str, oid: str, type_: str = "",
                         merge: Merge | None = None) -> Response:
    """PATCH, merged with `merge`, else the module's own (Module.merge)."""
    auth = await authenticate_registered(request)
    check_caller(module, auth.party, cc, pid)
    patch = await parse_patch(request)
    key = ObjectKey(module.id, auth.party.id, cc, pid, oid, type_)
    merger = patch_merger(module, key, patch, merge or module.merge)
    return await settle(request, module, await write(ctx_of(request).engine, module, key, auth.party, merger))


async def receiver_delete(request: Request, module: Module, cc: str, pid: str, oid: str) -> Response:
    auth = await authenticate_registered(request)
    check_caller(module, auth.party, cc, pid)
    async with ctx_of(request).engine.begin() as conn:
        stored = await repo.get(conn, ObjectKey(module.id, auth.party.id, cc, pid, oid))
        if stored is None:
            raise not_found(f"unknown {module.id[:-1]} {cc}/{pid}/{oid}")
        await repo.delete(conn, stored.pk)
    return answer(Written(Outcome.DELETED, None, auth.party))
