"""The delivery outbox: written in the same transaction as the object itself.

Coalescing: one PENDING row per (partner, object). A later change bumps its
`seq` and, if it needs more than the pending PATCH, upgrades it to PUT. The
worker reads the object's state once it holds the claim and removes the row
only if `seq` did not move meanwhile, so the newest state is always delivered
last. Claims and completions go in batches (`claim`, `complete_many`,
`fail_many`), one statement for many rows.

A deletion (Tariffs) keeps the object's row as a tombstone (`stale` on one of
ours) and queues DELETE: it replaces any pending PUT or PATCH of the object, a
later PUT (the object published again) replaces it, and a PUT already in
flight when the deletion comes is followed by the DELETE, never taken for it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.types import utcnow
from evroam.store.tables import objects, outbox

PENDING = "PENDING"
DEAD = "DEAD"
# The last_error of a row held back rather than tried (`defer_many`): what
# `release_held` looks for.
HELD = "held: "
# A killed worker's requests may still be running at the receiver (its
# handler carries on after the connection drops). Its rows are checked at the
# receiver only this long after they are released, so the check sees what
# those requests wrote instead of sending the same version again.
ORPHAN_GRACE_S = 3.0


@dataclass(slots=True)
class Delivery:
    id: int
    party_id: int
    module: str
    object_pk: int
    method: str
    patch: dict[str, Any] | None
    sub_path: str | None
    seq: int
    attempts: int
    # The previous attempt may have reached the partner (see tables.outbox).
    unsure: bool = False
    # Who holds the claim: a worker settles only rows it still holds, so an
    # answer that comes after its lease ran out (another worker took the
    # row) or that is recorded twice changes nothing.
    claimed_by: str | None = None


def _insert(conn: AsyncConnection):
    return pg_insert(outbox) if conn.dialect.name == "postgresql" else sqlite_insert(outbox)


# A PATCH field whose items the receiver appends rather than replaces.
def _has_key(conn: AsyncConnection, col: sa.ColumnElement, key: str) -> sa.ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return sa.func.coalesce(col.op("?", return_type=sa.Boolean)(key), False)
    return sa.func.json_type(col, f"$.{key}").is_not(None)


async def enqueue(conn: AsyncConnection, party_id: int | Sequence[int], module: str, object_pk: int, method: str,
                  patch: dict[str, Any] | None = None, sub_path: str | None = None,
                  appended: tuple[str, ...] = ()) -> None:
    """Queue one delivery, or one to each of several partners in one
    statement (a Hub's broadcast). `appended`: the module's PATCH fields that
    the receiver appends rather than replaces (Module.appended)."""
    now = utcnow()
    party_ids = [party_id] if isinstance(party_id, int) else list(party_id)
    if not party_ids:
        return
    rows = [dict(party_id=p, module=module, object_pk=object_pk, method=method, patch=patch, sub_path=sub_path,
                 seq=1, status=PENDING, attempts=0, next_attempt_at=now, created_at=now, updated_at=now)
            for p in party_ids]
    # The rows go as executemany parameters, not .values(rows): one statement
    # SQLAlchemy compiles once and caches, where a VALUES list is built and
    # compiled anew for every broadcast (8.8 ms of a 20-party one, profiled).
    ins = _insert(conn)
    ex = ins.excluded
    # Coalesce: a PATCH folds into a pending PATCH of the same sub-object; a
    # DELETE replaces whatever was pending; anything else becomes a PUT of the
    # whole (latest) object.
    same_patch = sa.and_(outbox.c.method == "PATCH", ex.method == "PATCH",
                         sa.func.coalesce(outbox.c.sub_path, "") == sa.func.coalesce(ex.sub_path, ""))
    # Appended fields (a Session's charging_periods, mod_sessions) are added
    # to the stored list by the receiver, so keeping only the newest patch
    # would lose some, and merging them into a row already in flight would
    # send some twice. Such a pair becomes a PUT of the latest object instead:
    # it carries every value.
    if patch is not None and any(f in patch for f in appended):
        same_patch = sa.false()
    elif appended:
        same_patch = sa.and_(same_patch, *(sa.not_(_has_key(conn, outbox.c.patch, f)) for f in appended))
    # The folded PATCH carries the fields of both, the newer winning: an EVSE
    # status change followed by another field's change must not lose the status.
    merged_patch = (outbox.c.patch.op("||", return_type=outbox.c.patch.type)(ex.patch)
                    if conn.dialect.name == "postgresql" else sa.func.json_patch(outbox.c.patch, ex.patch))
    stmt = ins.on_conflict_do_update(
        index_elements=[outbox.c.party_id, outbox.c.object_pk],
        index_where=sa.text("status = 'PENDING'"),
        set_={
            "seq": outbox.c.seq + 1,
            "method": sa.case((ex.method == "DELETE", "DELETE"), (same_patch, "PATCH"),
                              (outbox.c.method == "POST", "POST"), else_="PUT"),
            "patch": sa.case((same_patch, merged_patch), else_=sa.null()),
            "sub_path": sa.case((same_patch, ex.sub_path), else_=sa.null()),
            "next_attempt_at": sa.func.least(outbox.c.next_attempt_at, ex.next_attempt_at)
            if conn.dialect.name == "postgresql" else sa.func.min(outbox.c.next_attempt_at, ex.next_attempt_at),
            "updated_at": ex.updated_at,
        },
    )
    await conn.execute(stmt, rows)


async def claim(conn: AsyncConnection, worker: str, batch: int = 50, lease_s: float = 60.0) -> list[Delivery]:
    """Claim due rows for this worker. On PostgreSQL several processes claim
    concurrently (SKIP LOCKED); SQLite serialises writers, so one process."""
    now = utcnow()
    due = sa.and_(outbox.c.status == PENDING, outbox.c.next_attempt_at <= now,
                  sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now))
    sel = sa.select(outbox.c.id).where(due).order_by(outbox.c.next_attempt_at, outbox.c.id).limit(batch)
    if conn.dialect.name == "postgresql":
        sel = sel.with_for_update(skip_locked=True)
    ids = list((await conn.execute(sel)).scalars().all())
    if not ids:
        return []
    rows = (await conn.execute(
        outbox.update().where(outbox.c.id.in_(ids), due)
        # A row still carrying a claim whose lease ran out was abandoned by a
        # worker that died (on another host) or hung: it may have been sent.
        .values(claimed_until=now + timedelta(seconds=lease_s), claimed_by=worker,
                unsure=sa.or_(outbox.c.unsure, outbox.c.claimed_by.is_not(None)))
        .returning(outbox.c.id, outbox.c.party_id, outbox.c.module, outbox.c.object_pk, outbox.c.method,
                   outbox.c.patch, outbox.c.sub_path, outbox.c.seq, outbox.c.attempts, outbox.c.unsure)
    )).all()
    return [Delivery(*r, claimed_by=worker) for r in sorted(rows, key=lambda r: r.id)]


async def release_orphans(conn: AsyncConnection, host: str, alive: Callable[[int], bool]) -> int:
    """Release rows claimed by processes of this host that no longer run.

    A killed worker's claims would otherwise wait out their lease; a live
    worker's claims (any host) are left alone, so nothing is sent twice by
    two live workers. A released row is marked unsure: the dead process may
    have had it on the wire.
    """
    rows = (await conn.execute(sa.select(outbox.c.id, outbox.c.claimed_by).where(
        outbox.c.status == PENDING, outbox.c.claimed_by.like(f"{host}:%")))).all()
    dead = []
    for row in rows:
        try:
            pid = int(row.claimed_by.split(":")[1])
        except (IndexError, ValueError):
            continue
        if not alive(pid):
            dead.append(row.id)
    if dead:
        await conn.execute(outbox.update().where(outbox.c.id.in_(dead))
                           .values(claimed_until=None, claimed_by=None, unsure=True,
                                   next_attempt_at=utcnow() + timedelta(seconds=ORPHAN_GRACE_S)))
    return len(dead)


async def release_claims(conn: AsyncConnection, worker: str, on_wire: Collection[int] = ()) -> int:
    """A stopping worker hands back the rows it still holds; those in
    `on_wire` were being sent, so they are marked unsure."""
    mine = sa.and_(outbox.c.status == PENDING, outbox.c.claimed_by == worker)
    result = await conn.execute(outbox.update().where(mine).values(
        claimed_until=None, claimed_by=None,
        unsure=sa.or_(outbox.c.unsure, outbox.c.id.in_(list(on_wire))) if on_wire else outbox.c.unsure))
    return result.rowcount or 0


async def complete(conn: AsyncConnection, d: Delivery, sent: str | None = None) -> bool:
    """Remove the row if nothing changed while it was in flight; otherwise
    release it so the newer state goes out next. Returns True if removed.

    `sent`: the whole document the partner now holds (a PUT or POST reads
    the object when it is sent, so it may already carry a change queued
    after the claim). If the object is still exactly that, the newer row is
    delivered too and is removed rather than sent a second time; unless the
    object was deleted meanwhile (its data unchanged): that DELETE is still due.
    """
    return bool(await complete_many(conn, [(d, sent)]))


async def complete_many(conn: AsyncConnection, done: Sequence[tuple[Delivery, str | None]]) -> int:
    """`complete()` for many rows in the caller's transaction: the rows whose
    seq did not move (nearly all) go in one statement. Returns how many were removed."""
    if not done:
        return 0
    held = sa.tuple_(outbox.c.id, outbox.c.seq, outbox.c.claimed_by)
    removed = set((await conn.execute(
        outbox.delete().where(held.in_([(d.id, d.seq, d.claimed_by) for d, _ in done]))
        .returning(outbox.c.id))).scalars())
    for d, sent in done:
        if d.id not in removed and await _complete_moved(conn, d, sent):
            removed.add(d.id)
    return len(removed)


async def _complete_moved(conn: AsyncConnection, d: Delivery, sent: str | None) -> bool:
    """A row whose seq moved while it was in flight (see `complete`)."""
    if sent is not None:
        # One statement, so the row's seq and the object are read together.
        seq = (await conn.execute(
            sa.select(outbox.c.seq).select_from(outbox.join(objects, objects.c.id == outbox.c.object_pk))
            .where(outbox.c.id == d.id, outbox.c.claimed_by == d.claimed_by, objects.c.data == sent,
                   objects.c.stale.is_(False)))).scalar()
        if seq is not None:
            result = await conn.execute(outbox.delete().where(outbox.c.id == d.id, outbox.c.seq == seq))
            if result.rowcount:
                return True
    # The partner confirmed what we sent; the newer state is certainly not there yet.
    await conn.execute(outbox.update().where(outbox.c.id == d.id, outbox.c.claimed_by == d.claimed_by)
                       .values(claimed_until=None, claimed_by=None, next_attempt_at=utcnow(), unsure=False))
    return False


async def drop_party(conn: AsyncConnection, party_id: int) -> int:
    """Forget every delivery (pending or dead) to a partner that left: nothing
    will ever take them, and they would show as a growing lag."""
    result = await conn.execute(outbox.delete().where(outbox.c.party_id == party_id))
    return result.rowcount or 0


async def drop(conn: AsyncConnection, d: Delivery) -> None:
    await drop_many(conn, [d])


async def drop_many(conn: AsyncConnection, ds: Sequence[Delivery]) -> None:
    if ds:
        await conn.execute(outbox.delete().where(outbox.c.id.in_([d.id for d in ds])))


async def defer_many(conn: AsyncConnection, held: Sequence[tuple[Delivery, str]], until: datetime) -> None:
    """Hand rows back untried, due again at `until`, their attempts untouched:
    nothing was sent (a party behind a Hub that is OFFLINE). Each row keeps
    why, after `HELD`, for `partners status` and for `release_held`."""
    if not held:
        return
    now = utcnow()
    await conn.execute(outbox.update().where(
        outbox.c.id == sa.bindparam("b_id"), outbox.c.claimed_by == sa.bindparam("b_by")).values(
        next_attempt_at=until, claimed_until=None, claimed_by=None, updated_at=now,
        last_error=sa.bindparam("b_error", type_=sa.Text)),
        [{"b_id": d.id, "b_by": d.claimed_by, "b_error": (HELD + why)[:2000]} for d, why in held])


async def release_held(conn: AsyncConnection, party_id: int) -> int:
    """Make the held rows to a partner due now (its Hub reported a party
    behind it CONNECTED again); those still held are held again on claim."""
    result = await conn.execute(outbox.update().where(
        outbox.c.party_id == party_id, outbox.c.status == PENDING, outbox.c.last_error.like(HELD + "%"))
        .values(next_attempt_at=utcnow()))
    return result.rowcount or 0


def backoff(attempts: int, base_s: float = 1.0, cap_s: float = 3600.0) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap_s, base_s * (2 ** max(0, attempts - 1))))


@dataclass(slots=True)
class Failure:
    delivery: Delivery
    error: str
    unsure: bool = False  # the attempt may have reached the partner


async def fail(conn: AsyncConnection, d: Delivery, error: str, max_attempts: int, base_s: float = 1.0,
               cap_s: float = 3600.0, unsure: bool = False) -> str:
    """Record a failed attempt; `unsure` when it may have reached the partner."""
    return (await fail_many(conn, [Failure(d, error, unsure)], max_attempts, base_s, cap_s))[0]


async def fail_many(conn: AsyncConnection, failures: Sequence[Failure], max_attempts: int, base_s: float = 1.0,
                    cap_s: float = 3600.0) -> list[str]:
    """`fail()` for many rows, in one statement; the new status of each."""
    if not failures:
        return []
    now = utcnow()
    rows, statuses = [], []
    for f in failures:
        attempts = f.delivery.attempts + 1
        statuses.append(DEAD if attempts >= max_attempts else PENDING)
        rows.append({"b_id": f.delivery.id, "b_by": f.delivery.claimed_by, "b_attempts": attempts,
                     "b_status": statuses[-1],
                     "b_when": now + timedelta(seconds=backoff(attempts, base_s, cap_s)),
                     "b_error": f.error[:2000], "b_unsure": f.unsure})
    await conn.execute(outbox.update().where(
        outbox.c.id == sa.bindparam("b_id"), outbox.c.claimed_by == sa.bindparam("b_by")).values(
        attempts=sa.bindparam("b_attempts", type_=sa.Integer), status=sa.bindparam("b_status", type_=sa.String),
        next_attempt_at=sa.bindparam("b_when", type_=outbox.c.next_attempt_at.type), claimed_until=None,
        claimed_by=None, last_error=sa.bindparam("b_error", type_=sa.Text), updated_at=now,
        unsure=sa.bindparam("b_unsure", type_=sa.Boolean)), rows)
    return statuses


async def retry_dead(conn: AsyncConnection, party_id: int | None = None) -> int:
    """Put dead letters back in line (on operator demand). If the object has
    a newer pending row already, the dead one is redundant and dropped."""
    conds = [outbox.c.status == DEAD]
    if party_id is not None:
        conds.append(outbox.c.party_id == party_id)
    dead = (await conn.execute(sa.select(outbox.c.id, outbox.c.party_id, outbox.c.object_pk).where(*conds))).all()
    n = 0
    for row in dead:
        twin = (await conn.execute(sa.select(outbox.c.id).where(
            outbox.c.status == PENDING, outbox.c.party_id == row.party_id, outbox.c.object_pk == row.object_pk))).first()
        if twin:
            await conn.execute(outbox.delete().where(outbox.c.id == row.id))
        else:
            await conn.execute(outbox.update().where(outbox.c.id == row.id).values(
                status=PENDING, attempts=0, next_attempt_at=utcnow(), last_error=None))
        n += 1
    return n


async def counts(conn: AsyncConnection) -> dict[tuple[int, str], int]:
    """(party_id, status) → rows, for `partners status`."""
    rows = (await conn.execute(sa.select(outbox.c.party_id, outbox.c.status, sa.func.count())
                               .group_by(outbox.c.party_id, outbox.c.status))).all()
    return {(r[0], r[1]): r[2] for r in rows}


async def oldest_pending(conn: AsyncConnection) -> dict[int, datetime]:
    """Per partner, the oldest undelivered change: the basis of sync lag."""
    rows = (await conn.execute(sa.select(outbox.c.party_id, sa.func.min(outbox.c.created_at))
                               .where(outbox.c.status == PENDING).group_by(outbox.c.party_id))).all()
    return {r[0]: r[1] for r in rows}
