"""Repository of OCPI objects stored as documents with indexed keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import EllipsisType
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.base import OcpiModel
from evroam.module import Module
from evroam.ocpi.types import ci_key
from evroam.store.tables import OURS, objects


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """Identity of a stored object. CiString parts compare case-insensitively."""

    module: str
    owner_id: int
    country_code: str
    party_id: str
    object_id: str
    type: str = ""

    @property
    def cc(self) -> str:
        return ci_key(self.country_code)

    @property
    def pid(self) -> str:
        return ci_key(self.party_id)

    @property
    def oid(self) -> str:
        return ci_key(self.object_id)

    def where(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            objects.c.module == self.module,
            objects.c.owner_id == self.owner_id,
            objects.c.cc_key == self.cc,
            objects.c.pid_key == self.pid,
            objects.c.oid_key == self.oid,
            objects.c.type_key == self.type,
        )

    def params(self) -> dict[str, object]:
        """Values for the prebuilt statements' `_BY_KEY` condition."""
        return {"k_module": self.module, "k_owner": self.owner_id, "k_cc": self.cc, "k_pid": self.pid,
                "k_oid": self.oid, "k_type": self.type}


def object_key(module: Module, obj: OcpiModel, owner_id: int = OURS) -> ObjectKey:
    """The key an OCPI object is stored under (Tokens: uid + type)."""
    type_ = obj.type.value if module.typed else ""
    return ObjectKey(module.id, owner_id, obj.country_code, obj.party_id, getattr(obj, module.id_field), type_)


def ref_key(module: Module, obj: OcpiModel) -> str | None:
    """The partner an object concerns, when only it may see it (the module
    description's `ref_of`: Sessions and CDRs, their token's eMSP)."""
    return module.ref(obj)


@dataclass(slots=True)
class Stored:
    pk: int
    data: str
    last_updated: datetime
    stale: bool
    status: str | None
    note: str | None


_COLS = (objects.c.id, objects.c.data, objects.c.last_updated, objects.c.stale, objects.c.status, objects.c.note)


def _stored(row: sa.Row) -> Stored:
    return Stored(row.id, row.data, row.last_updated, row.stale, row.status, row.note)


# The receivers' statements, built once: a request then builds no SQL
# expression, and SQLAlchemy finds each one's compiled form at once.
_BY_KEY = sa.and_(
    objects.c.module == sa.bindparam("k_module"),
    objects.c.owner_id == sa.bindparam("k_owner"),
    objects.c.cc_key == sa.bindparam("k_cc"),
    objects.c.pid_key == sa.bindparam("k_pid"),
    objects.c.oid_key == sa.bindparam("k_oid"),
    objects.c.type_key == sa.bindparam("k_type"),
)
_GET = sa.select(*_COLS).where(_BY_KEY)
# PostgreSQL locks the row; SQLite renders no FOR UPDATE, but the
# transaction takes the write lock before this read (store/db.py).
_GET_FOR_UPDATE = _GET.with_for_update()
_UPDATE = objects.update().where(objects.c.id == sa.bindparam("b_pk")).values(
    data=sa.bindparam("b_data"), last_updated=sa.bindparam("b_last_updated"), stale=False,
    ref_key=sa.bindparam("b_ref_key"))
_UPDATE_NOTED = _UPDATE.values(note=sa.bindparam("b_note"))
_INSERT = objects.insert().values(
    module=sa.bindparam("k_module"), owner_id=sa.bindparam("k_owner"), cc_key=sa.bindparam("k_cc"),
    pid_key=sa.bindparam("k_pid"), oid_key=sa.bindparam("k_oid"), type_key=sa.bindparam("k_type"),
    data=sa.bindparam("b_data"), last_updated=sa.bindparam("b_last_updated"), stale=False,
    ref_key=sa.bindparam("b_ref_key"), status=sa.bindparam("b_status"), note=sa.bindparam("b_note"))


async def get(conn: AsyncConnection, key: ObjectKey, *, for_update: bool = False) -> Stored | None:
    row = (await conn.execute(_GET_FOR_UPDATE if for_update else _GET, key.params())).first()
    return _stored(row) if row else None


async def get_by_pk(conn: AsyncConnection, pk: int) -> Stored | None:
    row = (await conn.execute(sa.select(*_COLS).where(objects.c.id == pk))).first()
    return _stored(row) if row else None


async def get_many_by_pk(conn: AsyncConnection, pks: Sequence[int]) -> dict[int, Stored]:
    rows = (await conn.execute(sa.select(*_COLS).where(objects.c.id.in_(set(pks))))).all() if pks else []
    return {r.id: _stored(r) for r in rows}


async def find_any_owner(conn: AsyncConnection, module: str, object_id: str, owner_id: int = OURS) -> Stored | None:
    """Our object by id alone (Sender GET one: the URL has no cc/pid)."""
    row = (await conn.execute(
        sa.select(*_COLS).where(objects.c.module == module, objects.c.owner_id == owner_id,
                                objects.c.oid_key == ci_key(object_id)).order_by(objects.c.id).limit(1)
    )).first()
    return _stored(row) if row else None


async def find_ours(conn: AsyncConnection, module: str, object_id: str, type_: str = "",
                    country_code: str | None = None, party_id: str | None = None) -> list[Stored]:
    """Our live (not deleted) objects with this id, under any of our roles
    unless country_code/party_id say which; at most two (more is ambiguous)."""
    conds = [objects.c.module == module, objects.c.owner_id == OURS, objects.c.oid_key == ci_key(object_id),
             objects.c.type_key == type_, objects.c.stale.is_(False)]
    if country_code:
        conds.append(objects.c.cc_key == ci_key(country_code))
    if party_id:
        conds.append(objects.c.pid_key == ci_key(party_id))
    rows = (await conn.execute(sa.select(*_COLS).where(*conds).order_by(objects.c.id).limit(2))).all()
    return [_stored(r) for r in rows]


async def upsert(conn: AsyncConnection, key: ObjectKey, data: str, last_updated: datetime,
                 ref_key: str | None = None, status: str | None = None, note: str | None = None) -> tuple[int, bool]:
    """Insert or replace; returns (pk, created). Clears `stale`."""
    values = {"data": data, "last_updated": last_updated, "stale": False, "ref_key": ref_key}
    if status is not None:
        values["status"] = status
    if status is not None or note is not None:
        values["note"] = note
    for _ in range(2):
        row = (await conn.execute(sa.select(objects.c.id).where(key.where()))).first()
        if row is not None:
            await conn.execute(objects.update().where(objects.c.id == row.id).values(**values))
            return row.id, False
        try:
            return await _insert_row(conn, key, data, last_updated, ref_key, status, note), True
        except IntegrityError:
            continue  # a concurrent writer inserted it first: update instead
    raise RuntimeError(f"could not upsert {key}")


async def save(conn: AsyncConnection, key: ObjectKey, stored: Stored | None, data: str, last_updated: datetime,
               ref_key: str | None = None, *, note: str | None | EllipsisType = ...) -> tuple[int, bool]:
    """Insert or replace, as upsert, an object that `get(conn, key,
    for_update=True)` returned as `stored` earlier in this transaction: that
    read locked it, so it is written by its pk without being read again.
    `note` replaces the stored note; left out, the note stays."""
    if stored is not None:
        params = {"b_pk": stored.pk, "b_data": data, "b_last_updated": last_updated, "b_ref_key": ref_key}
        if note is ...:
            await conn.execute(_UPDATE, params)
        else:
            await conn.execute(_UPDATE_NOTED, {**params, "b_note": note})
        return stored.pk, False
    noted = None if note is ... else note
    try:
        return await _insert_row(conn, key, data, last_updated, ref_key, note=noted), True
    except IntegrityError:
        # PostgreSQL: another transaction created the key after our read
        # (there was no row to lock). SQLite cannot get here: that read took
        # the database's write lock (store/db.py).
        return await upsert(conn, key, data, last_updated, ref_key=ref_key, note=noted)


async def _insert_row(conn: AsyncConnection, key: ObjectKey, data: str, last_updated: datetime,
                      ref_key: str | None, status: str | None = None, note: str | None = None) -> int:
    """INSERT one object; IntegrityError when its key exists, with the
    transaction still usable."""
    params = {**key.params(), "b_data": data, "b_last_updated": last_updated, "b_ref_key": ref_key,
              "b_status": status, "b_note": note}
    if conn.dialect.name == "sqlite":
        # A failed statement undoes only itself in SQLite; the transaction
        # goes on, so no savepoint (two statements more) is needed.
        result = await conn.execute(_INSERT, params)
    else:
        # PostgreSQL aborts the whole transaction on an error, unless inside a savepoint.
        async with conn.begin_nested():
            result = await conn.execute(_INSERT, params)
    return int(result.inserted_primary_key[0])


async def insert(conn: AsyncConnection, key: ObjectKey, data: str, last_updated: datetime,
                 ref_key: str | None = None, status: str | None = None, note: str | None = None) -> int | None:
    """Insert only; None when an object with this key exists (immutable objects
    such as CDRs: a concurrent twin must fail, not overwrite)."""
    try:
        return await _insert_row(conn, key, data, last_updated, ref_key, status, note)
    except IntegrityError:
        return None


class Upserted(NamedTuple):
    pk: int
    created: bool
    written: bool  # False: the stored version was newer and was kept (keep_newer)


# A pulled page is read, then inserted; a key another transaction creates in
# between (a push of the same new object) fails the insert and the page is read
# again. Pushes now arrive 32 at a time, so three rounds were not always
# enough while a burst of new objects was landing (test_concurrency).
UPSERT_ROUNDS = 10


async def upsert_many(conn: AsyncConnection, rows: list[tuple[ObjectKey, str, datetime, str | None]], *,
                      keep_newer: bool = False) -> list[Upserted]:
    """Insert or replace many objects of one module and owner in a few
    statements (a pulled page, a bulk import). Rows are (key, data,
    last_updated, ref_key) with distinct keys; returns one Upserted per row,
    in order.

    `keep_newer`: a stored object with a later last_updated is kept, not
    overwritten (a pulled page read before a newer version was pushed to us).
    """
    if not rows:
        return []
    module, owner = rows[0][0].module, rows[0][0].owner_id
    idents = [(k.cc, k.pid, k.oid, k.type) for k, *_ in rows]
    if len(set(idents)) != len(idents):
        raise ValueError("upsert_many: the same object appears twice")
    oids = sorted({k.oid for k, *_ in rows})
    for _ in range(UPSERT_ROUNDS):
        found: dict[tuple[str, str, str, str], tuple[int, datetime]] = {}
        for i in range(0, len(oids), 500):
            # Locked, so a concurrent writer cannot slip a version in between
            # this read and our write (SQLite: the transaction's write lock).
            result = await conn.execute(
                sa.select(objects.c.id, objects.c.cc_key, objects.c.pid_key, objects.c.oid_key, objects.c.type_key,
                          objects.c.last_updated)
                .where(objects.c.module == module, objects.c.owner_id == owner,
                       objects.c.oid_key.in_(oids[i:i + 500]))
                # In one order for every writer, so two pages never lock crosswise.
                .order_by(objects.c.oid_key)
                .with_for_update())
            found.update({(r.cc_key, r.pid_key, r.oid_key, r.type_key): (r.id, r.last_updated) for r in result})
        out: list[Upserted] = [Upserted(0, False, False)] * len(rows)
        changed, new = [], []
        for i, ((key, data, last_updated, ref), ident) in enumerate(zip(rows, idents, strict=True)):
            if ident in found:
                pk, stored_at = found[ident]
                if keep_newer and stored_at > last_updated:
                    out[i] = Upserted(pk, False, False)
                    continue
                changed.append((i, {"b_pk": pk, "b_data": data, "b_last_updated": last_updated, "b_ref_key": ref}))
            else:
                new.append((i, {"module": module, "owner_id": owner, "cc_key": key.cc, "pid_key": key.pid,
                                "oid_key": key.oid, "type_key": key.type, "data": data,
                                "last_updated": last_updated, "ref_key": ref, "stale": False}))
        if new:
            try:
                async with conn.begin_nested():
                    inserted = await conn.execute(
                        objects.insert().returning(objects.c.id, sort_by_parameter_order=True), [p for _, p in new])
                    pks = inserted.scalars().all()
            except IntegrityError:
                # PostgreSQL: another transaction created one of these keys
                # after our read (nothing to lock then). Read again.
                continue
            for (i, _), pk in zip(new, pks, strict=True):
                out[i] = Upserted(pk, True, True)
        if changed:
            await conn.execute(objects.update().where(objects.c.id == sa.bindparam("b_pk")).values(
                data=sa.bindparam("b_data"), last_updated=sa.bindparam("b_last_updated"),
                ref_key=sa.bindparam("b_ref_key"), stale=False), [p for _, p in changed])
            for i, p in changed:
                out[i] = Upserted(p["b_pk"], False, True)
        return out
    raise RuntimeError(f"could not upsert a page of {module}: keys kept being created concurrently")


async def set_status(conn: AsyncConnection, pk: int, status: str, note: str | None = None) -> None:
    await conn.execute(objects.update().where(objects.c.id == pk).values(status=status, note=note))


def _filters(module: str, owner_id: int | None, date_from: datetime | None, date_to: datetime | None,
             ref_keys: Iterable[str] | None, status: str | None) -> list[sa.ColumnElement[bool]]:
    conds = [objects.c.module == module]
    if owner_id is not None:
        conds.append(objects.c.owner_id == owner_id)
    if date_from is not None:
        conds.append(objects.c.last_updated >= date_from)
    if date_to is not None:
        conds.append(objects.c.last_updated < date_to)
    if ref_keys is not None:
        conds.append(objects.c.ref_key.in_(list(ref_keys)))
    if status is not None:
        conds.append(objects.c.status == status)
    return conds


async def page(conn: AsyncConnection, module: str, owner_id: int | None, *, offset: int, limit: int,
               date_from: datetime | None = None, date_to: datetime | None = None,
               ref_keys: Iterable[str] | None = None, status: str | None = None,
               include_stale: bool = True) -> tuple[list[str], int]:
    """One page of documents (as stored JSON text) and the total count, in
    creation order so the same URL gives the same page."""
    conds = _filters(module, owner_id, date_from, date_to, ref_keys, status)
    if not include_stale:
        conds.append(objects.c.stale.is_(False))
    total = (await conn.execute(sa.select(sa.func.count()).select_from(objects).where(*conds))).scalar_one()
    if offset >= total:
        return [], total
    rows = (await conn.execute(
        sa.select(objects.c.data).where(*conds).order_by(objects.c.id).offset(offset).limit(limit)
    )).scalars().all()
    return list(rows), total


async def all_pks(conn: AsyncConnection, module: str, owner_id: int) -> set[int]:
    rows = await conn.execute(sa.select(objects.c.id).where(objects.c.module == module,
                                                            objects.c.owner_id == owner_id))
    return set(rows.scalars().all())


async def mark_stale(conn: AsyncConnection, pks: Iterable[int]) -> int:
    pks = list(pks)
    if not pks:
        return 0
    n = 0
    for i in range(0, len(pks), 500):
        result = await conn.execute(objects.update().where(objects.c.id.in_(pks[i:i + 500])).values(stale=True))
        n += result.rowcount or 0
    return n


def splice(docs: list[str]) -> bytes:
    """A JSON array of stored documents, without parsing them."""
    return ("[" + ",".join(docs) + "]").encode("utf-8")


async def delete(conn: AsyncConnection, pk: int) -> None:
    await conn.execute(objects.delete().where(objects.c.id == pk))
