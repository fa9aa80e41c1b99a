"""The outbox's coalescing (evroam.store.outbox), on the store alone: one
PENDING row per (partner, object) that later changes fold into, without ever
losing a change, a charging period or a deletion, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from evroam.ocpi.types import utcnow
from evroam.module import REGISTRY
from evroam.store import db, outbox
from evroam.store.tables import OURS, objects, parties
from evroam.store.tables import outbox as outbox_table
from tests.nodes import Databases, pg_available

PERIOD_1 = {"start_date_time": "2026-01-01T10:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 1}]}
PERIOD_2 = {"start_date_time": "2026-01-01T10:15:00Z", "dimensions": [{"type": "ENERGY", "volume": 2}]}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    """One migrated database per backend for the module (a PostgreSQL one
    costs seconds to create); `engine` empties it for each test."""
    if request.param == "postgresql" and (reason := asyncio.run(pg_available())):
        pytest.skip(reason)
    dbs = Databases(request.param, tmp_path_factory.mktemp("outbox"))

    async def create() -> str:
        url = await dbs.new("outbox")
        eng = db.create_engine(url)
        try:
            await db.migrate(eng)
        finally:
            await eng.dispose()
        return url

    yield asyncio.run(create())
    asyncio.run(dbs.drop_all())


@pytest.fixture
async def engine(database):
    eng = db.create_engine(database)
    try:
        async with eng.begin() as conn:
            for table in (outbox_table, objects, parties):
                await conn.execute(table.delete())
        yield eng
    finally:
        await eng.dispose()


async def _party(conn, name: str) -> int:
    now = utcnow()
    return (await conn.execute(parties.insert().values(name=name, status="REGISTERED", initiated_by_us=False,
                                                       created_at=now, updated_at=now)
                               .returning(parties.c.id))).scalar_one()


async def _object(conn, oid: str, data: str = "{}") -> int:
    return (await conn.execute(objects.insert().values(
        module="sessions", owner_id=OURS, cc_key="NL", pid_key="CPO", oid_key=oid, type_key="",
        last_updated=utcnow(), data=data, stale=False).returning(objects.c.id))).scalar_one()


@pytest.fixture
async def ids(engine):
    """(party, other party, object, other object) ids."""
    async with engine.begin() as conn:
        return (await _party(conn, "emsp"), await _party(conn, "other"), await _object(conn, "S1"),
                await _object(conn, "S2"))


async def enqueue(engine, party: int, obj: int, method: str, patch: dict | None = None,
                  sub_path: str | None = None) -> None:
    async with engine.begin() as conn:
        # The Sessions module's description says which PATCH fields append.
        await outbox.enqueue(conn, party, "sessions", obj, method, patch, sub_path,
                             appended=REGISTRY["sessions"].appended)


async def rows(engine) -> list[tuple]:
    """(party, object, method, patch, sub_path, seq, status) of every row, oldest first."""
    t = outbox_table
    async with engine.connect() as conn:
        found = (await conn.execute(sa.select(t.c.party_id, t.c.object_pk, t.c.method, t.c.patch, t.c.sub_path,
                                              t.c.seq, t.c.status).order_by(t.c.id))).all()
    return [tuple(r) for r in found]


async def claim(engine, batch: int = 50) -> list[outbox.Delivery]:
    async with engine.begin() as conn:
        return await outbox.claim(conn, "test:1:w", batch=batch)


# --- one row per (partner, object) ---------------------------------------------------------------


async def test_a_first_change_is_queued_as_given(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", {"status": "CHARGING"}, "E1")
    assert await rows(engine) == [(party, obj, "PATCH", {"status": "CHARGING"}, "E1", 1, "PENDING")]


async def test_each_partner_and_each_object_has_its_own_row(engine, ids):
    party, other, obj, obj2 = ids
    for p, o in ((party, obj), (other, obj), (party, obj2)):
        await enqueue(engine, p, o, "PUT")
    assert [(p, o, m, seq) for p, o, m, _, _, seq, _ in await rows(engine)] == [
        (party, obj, "PUT", 1), (other, obj, "PUT", 1), (party, obj2, "PUT", 1)]


async def test_a_pending_put_absorbs_a_later_patch(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PUT")
    await enqueue(engine, party, obj, "PATCH", {"kwh": 3})
    assert await rows(engine) == [(party, obj, "PUT", None, None, 2, "PENDING")]


async def test_patches_of_one_sub_object_merge_the_newer_field_winning(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", {"status": "CHARGING", "last_updated": "t1"}, "E1")
    await enqueue(engine, party, obj, "PATCH", {"parking_restrictions": ["EV_ONLY"], "last_updated": "t2"}, "E1")
    [(_, _, method, patch, sub_path, seq, _)] = await rows(engine)
    assert (method, sub_path, seq) == ("PATCH", "E1", 2)
    assert patch == {"status": "CHARGING", "parking_restrictions": ["EV_ONLY"], "last_updated": "t2"}


async def test_patches_of_the_whole_object_merge(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", {"kwh": 1})
    await enqueue(engine, party, obj, "PATCH", {"kwh": 2, "status": "COMPLETED"})
    assert await rows(engine) == [(party, obj, "PATCH", {"kwh": 2, "status": "COMPLETED"}, None, 2, "PENDING")]


async def test_patches_of_two_sub_objects_become_a_put(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", {"status": "CHARGING"}, "E1")
    await enqueue(engine, party, obj, "PATCH", {"status": "BLOCKED"}, "E2")
    assert await rows(engine) == [(party, obj, "PUT", None, None, 2, "PENDING")]


async def test_a_put_after_a_pending_patch_replaces_it(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", {"status": "CHARGING"}, "E1")
    await enqueue(engine, party, obj, "PUT")
    assert await rows(engine) == [(party, obj, "PUT", None, None, 2, "PENDING")]


# --- Session PATCHes append charging periods ---------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [
    ({"charging_periods": [PERIOD_1], "kwh": 1}, {"charging_periods": [PERIOD_2], "kwh": 3}),
    ({"charging_periods": [PERIOD_1], "kwh": 1}, {"status": "COMPLETED"}),
    ({"status": "ACTIVE"}, {"charging_periods": [PERIOD_2], "kwh": 3}),
], ids=["periods-then-periods", "periods-then-fields", "fields-then-periods"])
async def test_a_patch_with_charging_periods_is_never_folded(engine, ids, first, second):
    """The receiver appends charging_periods: a merged PATCH would carry only
    the newer periods and lose the first. A PUT of the latest Session carries them all."""
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", first)
    await enqueue(engine, party, obj, "PATCH", second)
    assert await rows(engine) == [(party, obj, "PUT", None, None, 2, "PENDING")]


# --- deletions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("before", ["PUT", "PATCH"])
async def test_a_delete_replaces_whatever_is_pending(engine, ids, before):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, before, {"kwh": 1} if before == "PATCH" else None)
    await enqueue(engine, party, obj, "DELETE")
    assert await rows(engine) == [(party, obj, "DELETE", None, None, 2, "PENDING")]


async def test_a_put_after_a_pending_delete_publishes_again(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "DELETE")
    await enqueue(engine, party, obj, "PUT")
    assert await rows(engine) == [(party, obj, "PUT", None, None, 2, "PENDING")]


async def test_a_pending_post_stays_a_post(engine, ids):
    """A CDR is POSTed: a later change to it is sent by the same POST."""
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "POST")
    await enqueue(engine, party, obj, "PUT")
    assert await rows(engine) == [(party, obj, "POST", None, None, 2, "PENDING")]


# --- a row in flight ---------------------------------------------------------------------------


async def test_a_change_while_in_flight_is_delivered_after_it(engine, ids):
    """The worker removes a row only if its seq did not move: a change that
    came while the row was on the wire is sent next, not dropped."""
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", {"charging_periods": [PERIOD_1]})
    [sent] = await claim(engine)
    await enqueue(engine, party, obj, "PATCH", {"charging_periods": [PERIOD_2]})
    assert await claim(engine) == []  # still held by the worker
    async with engine.begin() as conn:
        assert await outbox.complete(conn, sent) is False
    [again] = await claim(engine)
    # Not merged into the PATCH in flight (its period would go twice): the whole Session.
    assert (again.id, again.method, again.patch, again.seq) == (sent.id, "PUT", None, 2)
    async with engine.begin() as conn:
        assert await outbox.complete(conn, again) is True
    assert await rows(engine) == []


async def test_a_put_in_flight_that_sent_the_newest_state_takes_the_newer_row_with_it(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PUT")
    [sent] = await claim(engine)
    await enqueue(engine, party, obj, "PATCH", {"kwh": 2})
    async with engine.begin() as conn:
        assert await outbox.complete(conn, sent, sent="{}") is True  # the object is still exactly "{}"
    assert await rows(engine) == []


async def test_a_deletion_during_a_put_in_flight_is_still_sent(engine, ids):
    """The PUT read the object before it was deleted (its data unchanged,
    now a tombstone): the DELETE must follow, not be taken as delivered."""
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PUT")
    [sent] = await claim(engine)
    async with engine.begin() as conn:
        await conn.execute(objects.update().where(objects.c.id == obj).values(stale=True))
        await outbox.enqueue(conn, party, "sessions", obj, "DELETE")
    async with engine.begin() as conn:
        assert await outbox.complete(conn, sent, sent="{}") is False
    [(_, _, method, _, _, seq, _)] = await rows(engine)
    assert (method, seq) == ("DELETE", 2)


# --- order and retries ---------------------------------------------------------------------------


async def test_claims_come_oldest_first_and_a_change_keeps_its_row_s_place(engine, ids):
    party, other, obj, obj2 = ids
    await enqueue(engine, party, obj, "PUT")
    await enqueue(engine, other, obj, "PUT")
    await enqueue(engine, party, obj2, "PUT")
    await enqueue(engine, party, obj, "PATCH", {"kwh": 1})  # folds into the first row
    claimed = await claim(engine)
    assert [(d.party_id, d.object_pk, d.seq) for d in claimed] == [(party, obj, 2), (other, obj, 1), (party, obj2, 1)]
    assert [d.id for d in claimed] == sorted(d.id for d in claimed)


async def test_a_change_to_a_row_waiting_out_its_backoff_is_due_at_once(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PUT")
    [d] = await claim(engine)
    async with engine.begin() as conn:
        await outbox.fail(conn, d, "partner down", max_attempts=10, base_s=3600, cap_s=3600)
        await conn.execute(outbox_table.update().values(next_attempt_at=utcnow() + timedelta(hours=1)))
    assert await claim(engine) == []
    await enqueue(engine, party, obj, "PATCH", {"kwh": 1})
    [again] = await claim(engine)
    assert (again.id, again.attempts, again.seq) == (d.id, 1, 2)


async def test_a_dead_letter_takes_no_change_a_new_row_does(engine, ids):
    party, _, obj, _ = ids
    await enqueue(engine, party, obj, "PATCH", {"kwh": 1})
    [d] = await claim(engine)
    async with engine.begin() as conn:
        assert await outbox.fail(conn, d, "refused", max_attempts=1) == outbox.DEAD
    await enqueue(engine, party, obj, "PATCH", {"kwh": 2})
    assert await rows(engine) == [(party, obj, "PATCH", {"kwh": 1}, None, 1, "DEAD"),
                                  (party, obj, "PATCH", {"kwh": 2}, None, 1, "PENDING")]
