"""The one path for every change we make to our own objects.

The admin API, `data import`, `Node.publish` and the modules' owner helpers
(EVSE status, session updates, CDRs) all change our objects through here, so
the same rules hold whoever makes the change:
- the object sits under one of our roles that owns the module (a Hub's may too);
- the module's own rules hold (`Module.owner_rules`: e.g. a Location's EVSE
  uids and Connector ids are unique, and within the node's limits);
- the same document again is a no-op: nothing is pushed;
- a version older than the stored one is refused, since receivers keep the
  newer one and would silently diverge from us;
- an immutable object (a CDR) never changes once stored (credit CDRs exist for that);
- changes of one object are serialised where the module asks (`owner_rules.lock`).
The object and its deliveries to every partner receiving the module are then
written in one transaction (publish.py).

A refusal is a `Refused`: the admin API answers it 400 (2001), or 409 for a
`conflict` with what is stored; `data import` lists it in its report;
`Node.publish` raises it to its caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.config import NodeConfig, RoleConfig
from evroam.module import Module
from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import Role
from evroam.ocpi.types import ci_key, format_datetime
from evroam.store import objects as repo
from evroam.store import parties as party_repo
from evroam.store.objects import ObjectKey, Stored, object_key
from evroam.store.tables import OURS, objects
from evroam.sync.publish import publish, publish_many, unpublish

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
_CHUNK = 500  # ids per lookup query
_BATCH = 500  # objects per bulk statement (and per progress step)


class Refused(ValueError):
    """An object that is valid OCPI but may not be published as given.
    `conflict`: it contradicts what is stored (older, or a changed CDR);
    otherwise the object itself is wrong."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


class RefusedMany(Refused):
    """Objects of a bulk write that were refused, by index; nothing was written."""

    def __init__(self, refusals: list[tuple[int, Refused]]) -> None:
        super().__init__(str(refusals[0][1]), conflict=refusals[0][1].conflict)
        self.refusals = refusals


@dataclass(frozen=True, slots=True)
class Ours:
    """Who makes the change: our roles, and the node's configuration that the
    module rules read (None: their defaults). `roles` None means not known
    (a helper handed a bare engine): then only an object already stored can
    change, and its key (country_code, party_id) is the stored one."""

    roles: tuple[RoleConfig, ...] | None = None
    config: NodeConfig | None = None

    @classmethod
    def of(cls, config: NodeConfig) -> Ours:
        return cls(tuple(config.roles), config)


def own_keys(roles: Iterable[RoleConfig], module: Module) -> set[tuple[str, str]]:
    """(COUNTRY, PARTY) of our roles that own this module's data (a Hub may too)."""
    return {(ci_key(r.country_code), ci_key(r.party_id)) for r in roles if r.role in (module.owner, Role.HUB)}


def check_own(obj: OcpiModel, module: Module, keys: set[tuple[str, str]]) -> None:
    if (ci_key(obj.country_code), ci_key(obj.party_id)) not in keys:
        ours = ", ".join(f"{cc}/{pid}" for cc, pid in sorted(keys)) or "none"
        raise Refused(f"country_code/party_id: {obj.country_code}/{obj.party_id} is not one of this node's "
                      f"{module.owner.value} roles ({ours})")


def check(obj: OcpiModel, module: Module, ours: Ours) -> None:
    """The rules that need only the object: ours, and the module's. Raises Refused."""
    if ours.roles is not None and module.owner_rules.describes_others:
        if not any(r.role == module.owner for r in ours.roles):
            raise Refused(f"{module.id}: only a node with a {module.owner.value} role publishes these")
    elif ours.roles is not None:
        check_own(obj, module, own_keys(ours.roles, module))
    rule = module.owner_rules.refusal
    why = rule(obj, ours.config) if rule is not None else None
    if why:
        raise Refused(why)


def change_kind(module: Module, obj: OcpiModel, data: str, stored: Stored | None, ours: Ours) -> str:
    """CREATED, UPDATED or UNCHANGED; raises Refused for an unpublishable change."""
    if stored is None or stored.stale:  # stale: one we deleted, published again
        if ours.roles is None:
            raise Refused(f"{module.id}: {getattr(obj, module.id_field)!r} is not stored, and without this "
                          "node's roles it cannot be created")
        return CREATED
    if stored.data == data:
        return UNCHANGED
    if module.immutable:
        raise Refused(f"{module.id[:-1]} {getattr(obj, module.id_field)!r} exists already and differs; "
                      "CDRs never change once sent (issue a credit CDR instead)", conflict=True)
    if obj.last_updated < stored.last_updated:
        raise Refused(f"last_updated: {format_datetime(obj.last_updated)} is older than the stored version "
                      f"({format_datetime(stored.last_updated)}); partners would keep theirs", conflict=True)
    return UPDATED


@contextlib.asynccontextmanager
async def changing(engine: AsyncEngine, module: Module, *object_ids: str) -> AsyncIterator[AsyncConnection]:
    """A transaction for changing these objects of ours, under the module's
    per-object locks, taken in one order so that two callers never wait on
    each other. A read-modify-write (an EVSE of a Location) reads in it."""
    async with contextlib.AsyncExitStack() as stack:
        lock = module.owner_rules.lock
        if lock is not None:
            for oid in sorted({ci_key(i) for i in object_ids}):
                await stack.enter_async_context(lock(id(engine), oid))
        yield await stack.enter_async_context(engine.begin())


async def write(conn: AsyncConnection, module: Module, obj: OcpiModel, ours: Ours, *,
                patch: dict[str, Any] | None = None, sub_path: str | None = None) -> str:
    """Apply the rules to one of our objects and, unless it is unchanged,
    store it and queue it for every partner receiving the module, in the
    caller's transaction (from `changing`). `patch` marks a small change sent
    as PATCH at `sub_path`. Returns CREATED, UPDATED or UNCHANGED."""
    check(obj, module, ours)
    data = obj.to_json_bytes().decode()
    stored = await repo.get(conn, object_key(module, obj), for_update=True)
    kind = change_kind(module, obj, data, stored, ours)
    if kind != UNCHANGED:
        await publish(conn, module, obj, patch=patch, sub_path=sub_path)
    return kind


async def put(engine: AsyncEngine, module: Module, obj: OcpiModel, ours: Ours, *,
              patch: dict[str, Any] | None = None, sub_path: str | None = None) -> str:
    """`write` in a transaction of its own (Node.publish)."""
    check(obj, module, ours)  # before waiting for the lock: a refused object needs none
    async with changing(engine, module, getattr(obj, module.id_field)) as conn:
        return await write(conn, module, obj, ours, patch=patch, sub_path=sub_path)


async def delete(conn: AsyncConnection, module: Module, key: ObjectKey) -> bool:
    """Delete one of our objects (a module whose Receiver has DELETE), in the
    caller's transaction (from `changing`): partners are queued a DELETE.
    False when there is nothing (left) to delete."""
    if not module.deletable:
        raise Refused(f"{module.id}: partners cannot be sent a DELETE of this module", conflict=True)
    return await unpublish(conn, module, key)


def _ident(key: ObjectKey) -> tuple[str, str, str, str]:
    return key.cc, key.pid, key.oid, key.type


async def existing(conn: AsyncConnection, module: Module, keys: Sequence[ObjectKey]) -> dict[tuple, Stored]:
    """Our stored objects for these keys, in a few queries rather than one each."""
    out: dict[tuple, Stored] = {}
    oids = sorted({k.oid for k in keys})
    for i in range(0, len(oids), _CHUNK):
        rows = (await conn.execute(sa.select(
            objects.c.id, objects.c.data, objects.c.last_updated, objects.c.stale, objects.c.status,
            objects.c.note, objects.c.cc_key, objects.c.pid_key, objects.c.oid_key, objects.c.type_key,
        ).where(objects.c.module == module.id, objects.c.owner_id == OURS,
                objects.c.oid_key.in_(oids[i:i + _CHUNK])))).all()
        for r in rows:
            out[(r.cc_key, r.pid_key, r.oid_key, r.type_key)] = Stored(r.id, r.data, r.last_updated, r.stale,
                                                                      r.status, r.note)
    return out


def _refusals(objs: Sequence[OcpiModel], rule: Callable[[int, OcpiModel], None]) -> list[tuple[int, Refused]]:
    out = []
    for i, obj in enumerate(objs):
        try:
            rule(i, obj)
        except Refused as exc:
            out.append((i, exc))
    return out


async def write_many(conn: AsyncConnection, module: Module, objs: Sequence[OcpiModel], ours: Ours, *,
                     on_batch: Callable[[list[str]], None] | None = None) -> list[str]:
    """`write` for many objects of one module (`data import`), in the
    caller's transaction (from `changing` with all their ids): the same rules,
    then the same rows in a few statements. Keys must be distinct. Every
    object is judged before any is written: RefusedMany names each refused
    one. Returns each object's kind, in order; `on_batch(kinds)` after each
    batch written."""
    refused = _refusals(objs, lambda _i, o: check(o, module, ours))
    if refused:
        raise RefusedMany(refused)
    datas = [o.to_json_bytes().decode() for o in objs]
    keys = [object_key(module, o) for o in objs]
    stored = await existing(conn, module, keys)
    kinds: list[str] = []
    refused = _refusals(objs, lambda i, o: kinds.append(change_kind(module, o, datas[i],
                                                                    stored.get(_ident(keys[i])), ours)))
    if refused:
        raise RefusedMany(refused)
    receivers = await party_repo.list_all(conn)  # once, not once per object
    for start in range(0, len(objs), _BATCH):
        batch = kinds[start:start + _BATCH]
        changed = [o for o, k in zip(objs[start:start + _BATCH], batch, strict=True) if k != UNCHANGED]
        if changed:
            await publish_many(conn, module, changed, receivers=receivers)
        if on_batch is not None:
            on_batch(batch)
    return kinds
