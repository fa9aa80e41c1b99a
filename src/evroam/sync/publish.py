"""Storing our own objects and queueing their deliveries, in the caller's
transaction, so a change is never stored without being queued (or queued
without being stored). No rule is checked here: every change goes through
sync/own.py, which applies the owner rules and then calls these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.base import OcpiModel
from evroam.module import Module
from evroam.ocpi.types import ci_key, utcnow
from evroam.store import objects, outbox
from evroam.store import parties as party_repo
from evroam.store.objects import object_key as object_key  # re-exported for callers of publish()
from evroam.store.objects import ref_key
from evroam.server.routing import is_hub
from evroam.store.parties import Party
from evroam.store.tables import outbox as outbox_tbl


def wants(party: Party, module: str, ref: str | None, direct: bool = True) -> bool:
    """Does `party` receive this object? Everyone with the module's Receiver,
    or, for an object that concerns one party only (`ref`), that party: the
    partner it registered as, else (`direct` False: no partner is) a Hub,
    which forwards it to the party behind it (sync/via_hub.py)."""
    if party.status != party_repo.REGISTERED or not party.endpoint_url(module, "RECEIVER"):
        return False
    if ref is None:
        return True
    if any(ci_key(r["country_code"] + r["party_id"]) == ref for r in party.roles or ()):
        return True
    return not direct and is_hub(party)


def receiving(parties: Sequence[Party], module: str, ref: str | None) -> list[Party]:
    """The partners an object goes to (`wants`)."""
    direct = ref is None or any(wants(p, module, ref) for p in parties)
    return [p for p in parties if wants(p, module, ref, direct)]


async def publish(conn: AsyncConnection, module: Module, obj: OcpiModel, *,
                  patch: dict[str, Any] | None = None, sub_path: str | None = None) -> tuple[int, bool]:
    """Store one of our objects and queue it for every partner that receives
    this module. `patch` marks a small change sent as PATCH (e.g. EVSE status);
    otherwise the whole object goes out as PUT (POST for CDRs)."""
    ref = ref_key(module, obj)
    pk, created = await objects.upsert(conn, object_key(module, obj), obj.to_json_bytes().decode(),
                                       obj.last_updated, ref_key=ref)
    method = "POST" if module.immutable else ("PATCH" if patch is not None and not created else "PUT")
    # One statement for every receiving partner (enqueue takes them all).
    await outbox.enqueue(conn, [p.id for p in receiving(await party_repo.list_all(conn), module.id, ref)],
                         module.id, pk, method, patch if method == "PATCH" else None,
                         sub_path if method == "PATCH" else None, appended=module.appended)
    return pk, created


async def unpublish(conn: AsyncConnection, module: Module, key: objects.ObjectKey) -> bool:
    """Delete one of our objects (Tariffs: the only module whose Receiver has
    DELETE) and queue the DELETE for every partner receiving the module. The
    row stays as a tombstone (store/outbox.py); publishing the object again
    revives it. False when there is nothing (left) to delete."""
    stored = await objects.get(conn, key, for_update=True)
    if stored is None or stored.stale:
        return False
    await objects.mark_stale(conn, [stored.pk])
    for party in await party_repo.list_all(conn):
        if wants(party, module.id, None):
            await outbox.enqueue(conn, party.id, module.id, stored.pk, "DELETE")
    return True


async def publish_many(conn: AsyncConnection, module: Module, objs: Sequence[OcpiModel], *,
                       receivers: list[Party] | None = None) -> list[objects.Upserted]:
    """`publish()` for many objects at once (bulk import): the same rows in the
    caller's transaction, in a few statements instead of several per object.
    Every change goes out whole (PUT; POST for CDRs). The objects' keys must
    be distinct. Returns (pk, created) per object, in order."""
    if receivers is None:
        receivers = await party_repo.list_all(conn)
    refs = [ref_key(module, o) for o in objs]
    result = await objects.upsert_many(conn, [(object_key(module, o), o.to_json_bytes().decode(), o.last_updated,
                                               refs[i]) for i, o in enumerate(objs)])
    method = "POST" if module.immutable else "PUT"
    now = utcnow()
    fresh_rows = []
    for i, (pk, created, _) in enumerate(result):
        for party in receiving(receivers, module.id, refs[i]):
            if created:  # a new object has no pending delivery to fold into
                fresh_rows.append({"party_id": party.id, "module": module.id, "object_pk": pk, "method": method,
                                   "seq": 1, "status": outbox.PENDING, "attempts": 0, "next_attempt_at": now,
                                   "created_at": now, "updated_at": now})
            else:
                await outbox.enqueue(conn, party.id, module.id, pk, method, appended=module.appended)
    if fresh_rows:
        await conn.execute(outbox_tbl.insert(), fresh_rows)
    return result
