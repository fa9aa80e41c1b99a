"""Concurrent writers to the same objects, on both backends.

SQLite has no SELECT … FOR UPDATE, and its driver used to start a
transaction only at the first write, so two requests could both read a
document and both write it back, losing one change. A transaction now takes
the write lock at its first write or locking read (store/db.py).
"""

from __future__ import annotations

import asyncio
import json

from evroam.ocpi.tariffs import Tariff
from evroam.modules.events import Received
from tests.charging import period, session, ts
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.pair import pair
from tests.partners import change, holds_exactly, latest_ours


async def test_concurrent_session_patches_all_land(cluster):
    """Twenty PATCHes of one Session at once, each appending its own charging
    period: every period is kept."""
    p = await pair(cluster)
    url = p.rx("sessions", "NL", "CPO", "S1")
    status, body, _ = await call("PUT", url, p.as_cpo, session(periods=[period(0, 1)]))
    assert (status, body["status_code"]) == (201, 1000)
    answers = await asyncio.gather(*(
        call("PATCH", url, p.as_cpo, {"charging_periods": [period(1 + i, 1)], "last_updated": ts(1)})
        for i in range(20)))
    assert {(status, body["status_code"]) for status, body, _ in answers} == {(200, 1000)}
    doc = await p.doc_at_emsp("sessions", "S1")
    assert sorted(cp["start_date_time"] for cp in doc["charging_periods"]) == sorted(ts(i) for i in range(21))


async def test_pull_keeps_a_newer_version_pushed_meanwhile(cluster):
    """A pulled page can be older than what was pushed to us after the page
    was read: the newer version stays, and is not marked stale."""
    p = await pair(cluster, run_workers=False)
    await p.cpo.publish("tariffs", change(0, 1))
    newer = Tariff.from_wire({**json.loads(change(5, 1).to_json_bytes()), "currency": "USD"})
    status, body, _ = await call("PUT", p.rx("tariffs", "NL", "CPO", "T000"), p.as_cpo,
                                 json.loads(newer.to_json_bytes()))
    assert (status, body["status_code"]) == (201, 1000)
    got = []

    @p.emsp.on(Received.TARIFF)
    async def _received(tariff, party):
        got.append(tariff)

    result = await p.emsp.pull(p.cpo_at_emsp.name, "tariffs", full=True)
    assert (result.error, result.stored, result.kept_newer, result.marked_stale) == (None, 1, 1, 0)
    assert got == []  # nothing was applied, so nothing is announced
    stored = await p.at_emsp("tariffs", "T000")
    assert (stored.data, stored.stale) == (newer.to_json_bytes().decode(), False)


async def test_pull_while_the_same_objects_are_pushed(cluster):
    """Pushes of new objects land while a full pull stores the same ones: no
    key is inserted twice, the pull succeeds, the latest state wins."""
    p = await pair(cluster, run_workers=False)
    n = 150
    for i in range(n):
        await p.cpo.publish("tariffs", change(i, n))
    p.cpo.delivery.start()
    pulls = await asyncio.gather(*(p.emsp.pull(p.cpo_at_emsp.name, "tariffs", full=True) for _ in range(3)))
    assert [r.error for r in pulls] == [None] * 3
    latest = await latest_ours(p.cpo.engine, n)
    await wait_for(lambda: holds_exactly(p.emsp, p.cpo_at_emsp.id, latest), timeout=30,
                   what="the eMSP to hold every object")
