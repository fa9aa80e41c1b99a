"""Batched delivery (issue 9): answers are recorded in batches, one
transaction each, after the sends. Whatever point the worker stops at, no
change is lost, and none is sent twice: a row is done only once its answer
is committed; until then it is still claimed, and a row whose send may have
gone out is checked at the partner before it is sent again."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import sqlalchemy as sa

from evroam.modules.events import Received
from evroam.store import calllog
from evroam.store.tables import outbox
from evroam.sync.delivery import DeliveryWorker
from tests.nodes import wait_for
from tests.partners import CPO, EMSP, tariff
from tests.services import FAST_RETRY



async def _pair(cluster):
    cpo = await cluster.node("cpo", CPO, run_workers=False, **FAST_RETRY)
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await cpo.handshake.invite("emsp")
    await emsp.handshake.register(url, token_a)
    applied: Counter[str] = Counter()

    @emsp.on(Received.TARIFF)
    async def _got(t, party):
        applied[t.id] += 1

    return cpo, emsp, applied


async def _rows(node) -> list[tuple]:
    async with node.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(
            sa.select(outbox.c.status, outbox.c.claimed_by, outbox.c.unsure).order_by(outbox.c.id))]


async def _puts(node) -> Counter[str]:
    await node.call_log.flush()
    return Counter(r["url"].rsplit("/", 1)[1] for r in await calllog.recent(node.engine, limit=1000)
                   if r["direction"] == "in" and r["method"] == "PUT")


async def test_answers_waiting_for_their_batch_are_recorded_when_the_worker_stops(cluster):
    cpo, emsp, applied = await _pair(cluster)
    worker = cpo.delivery
    record, gate, calls = worker._record_many, asyncio.Event(), []

    async def stuck_first_commit(answers):
        calls.append(len(answers))
        if len(calls) == 1:
            await gate.wait()  # the batch's commit is under way when the stop comes
        await record(answers)

    worker._record_many = stuck_first_commit
    for i in range(10):
        await cpo.publish("tariffs", tariff(f"T{i}"))
    worker.start()
    await wait_for(lambda: len(applied) == 10, what="the ten PUTs at the eMSP")
    assert len(await _rows(cpo)) == 10  # sent, not yet recorded
    await worker.stop()
    assert await _rows(cpo) == []
    assert worker.delivered == 10
    worker.start()  # nothing is sent again
    await asyncio.sleep(0.3)
    await worker.stop()
    assert (await _puts(emsp), set(applied.values())) == (Counter({f"T{i}": 1 for i in range(10)}), {1})


async def test_a_worker_that_dies_before_its_batch_commits_loses_nothing_and_doubles_nothing(cluster):
    """Sent, answered, never recorded: the rows are still claimed by the
    dead process; the next worker checks each at the partner and finds it."""
    cpo, emsp, applied = await _pair(cluster)
    for i in range(6):
        await cpo.publish("tariffs", tariff(f"T{i}"))
    dead = DeliveryWorker(cpo.engine, cpo.client)
    dead.worker_id = f"{socket.gethostname()}:{2**22 + 4321}:dead"  # above pid_max: never alive
    claimed = await dead._claim(10)
    outcomes = await asyncio.gather(*(dead._deliver(c) for c in claimed))
    assert [o.error for o in outcomes] == [None] * 6 and len(applied) == 6
    cpo.start_workers()  # releases the dead process's claims, marked unsure
    await wait_for(lambda: _empty(cpo), what="the outbox to drain")
    assert cpo.delivery.already_held == 6
    assert (await _puts(emsp), set(applied.values())) == (Counter({f"T{i}": 1 for i in range(6)}), {1})


async def test_a_send_cut_off_by_a_stop_is_checked_before_it_goes_again(cluster):
    cpo, emsp, applied = await _pair(cluster)
    entered, release = asyncio.Event(), asyncio.Event()

    @emsp.on(Received.TARIFF)
    async def _slow(t, party):
        applied[t.id] += 1
        if t.id == "T0":
            entered.set()
            await release.wait()  # stored and committed; only the answer is late

    for i in range(3):
        await cpo.publish("tariffs", tariff(f"T{i}"))
    cpo.delivery.start()
    await wait_for(lambda: entered.is_set() and len(applied) == 3, what="T0 on the wire, T1 and T2 applied")
    await wait_for(lambda: _count(cpo, 1), what="T1 and T2 recorded")
    await cpo.delivery.stop()
    # Handed back at once (not left to a lease), and marked: it may have arrived.
    assert await _rows(cpo) == [("PENDING", None, True)]
    release.set()
    cpo.delivery.start()
    await wait_for(lambda: _empty(cpo), what="the outbox to drain")
    assert cpo.delivery.already_held == 1
    assert (await _puts(emsp), set(applied.values())) == (Counter({"T0": 1, "T1": 1, "T2": 1}), {1})


async def _count(node, n: int) -> bool:
    return len(await _rows(node)) == n


async def _empty(node) -> bool:
    return await _count(node, 0)
