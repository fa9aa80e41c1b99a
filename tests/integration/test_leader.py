"""One leader per database (issue 8, point 3.3): scheduled pulls, lag alerts
and pruning run on exactly one process at a time; delivery on all of them.

On PostgreSQL the leader holds an advisory lock on a connection of its own
(evroam/leader.py). Two real `evroam worker` processes: one pulls and one
alerts; SIGKILL it and the other takes over within the documented bound.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import sqlalchemy as sa

from evroam.leader import CHECK_TIMEOUT_S, RETRY_S, Leadership
from evroam.store import calllog
from evroam.store.db import create_engine
from tests.nodes import wait_for
from tests.partners import CPO, EMSP, WorkerProcess, holds_for, token

# Room for process start-up and a loaded machine on top of the bound itself.
TAKEOVER_BOUND_S = RETRY_S + CHECK_TIMEOUT_S + 5.0


def _need_postgresql(cluster) -> None:
    if cluster.dbs.backend != "postgresql":
        pytest.skip("leader election between processes needs PostgreSQL (SQLite: one process per database)")


async def _location_gets(cpo) -> int:
    await cpo.call_log.flush()
    rows = await calllog.recent(cpo.engine, limit=1000)
    return sum(1 for r in rows if r["direction"] == "in" and r["method"] == "GET" and "/locations" in r["url"])


@pytest.mark.timeout(240)
async def test_two_workers_one_pulls_and_alerts_and_the_other_takes_over(cluster, tmp_path):
    _need_postgresql(cluster)
    cpo = await cluster.node("cpo", CPO)
    away = await cluster.node("away", [("CPO", "NL", "AWY")])
    # The eMSP serves HTTP only; its two workers share its database.
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    for partner in (cpo, away):
        token_a, url = await partner.handshake.invite("emsp")
        await emsp.handshake.register(url, token_a)
    await away.stop()  # its deliveries fail, so its lag grows past the alert threshold
    await emsp.publish("tokens", token())
    cfg = dataclasses.replace(emsp.config, pull_interval_s=8.0, full_pull_interval_s=3600.0,
                              pull_initial_delay_s=0.2, lag_alert_s=0.5, lag_check_s=0.1,
                              delivery_backoff_s=60.0, delivery_backoff_cap_s=60.0)
    cfg.save()
    workers = [WorkerProcess(cfg.home, tmp_path / f"worker{i}.log") for i in (1, 2)]
    try:
        def alerts(of: list[WorkerProcess] = workers) -> list[dict]:
            # nl-cpo may lag too until the first delivery; nl-awy lags for good.
            return [e for w in of for e in w.events("sync.lag_alert") if e["partner"] == "nl-awy"]

        await wait_for(lambda: _at_least(_location_gets(cpo), 1), timeout=60, what="the first scheduled pull")
        await wait_for(lambda: len(alerts()) >= 1, timeout=30, what="the lag alert")

        async def once() -> bool:
            return await _location_gets(cpo) == 1 and len(alerts()) == 1
        await holds_for(once, 3.0, "one pull of locations and one lag alert across two workers")

        elected = {w.pid: w.events("leader.elected") for w in workers}
        [leader] = [w for w in workers if elected[w.pid]]
        [standby] = [w for w in workers if w is not leader]
        assert standby.events("leader.standby") and not elected[standby.pid]
        assert elected[leader.pid][0]["pid"] == leader.pid

        leader.kill()
        killed_at = time.monotonic()
        await wait_for(lambda: bool(standby.events("leader.elected")), timeout=TAKEOVER_BOUND_S + 10,
                       what="the standby to take over")
        assert time.monotonic() - killed_at < TAKEOVER_BOUND_S
        # The new leader runs the duties: the next scheduled pull, and its own alert.
        await wait_for(lambda: len(alerts([standby])) == 1, timeout=20, what="the new leader's alert")
        await wait_for(lambda: _at_least(_location_gets(cpo), 2), timeout=30, what="the new leader's pull")
        assert await _location_gets(cpo) == 2
    finally:
        for w in workers:
            w.stop()


async def _at_least(count, n: int) -> bool:
    return await count >= n


async def _lock_holder_pid(node) -> int | None:
    return await _lock_holder_pid_on(node.engine)


async def _lock_holder_pid_on(engine) -> int | None:
    # pg_locks shows every database's locks: with pytest-xdist, other tests'
    # leaders hold the same advisory lock in their own databases.
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
            " AND classid = 1702261248 AND objid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))).scalar()


async def test_serve_processes_take_part_and_a_leader_that_loses_its_connection_stops(cluster):
    """Two serving nodes on one database: one leader. Its lock's session is
    killed: it stops its duties, and the lock goes to one of them again."""
    _need_postgresql(cluster)
    first = await cluster.node("cpo-a", CPO)
    second = await cluster.node("cpo-b", CPO, db=first.config.db)
    nodes = (first, second)
    await wait_for(lambda: sum(n.leadership.is_leader for n in nodes) == 1, timeout=15, what="one leader")
    [leader] = [n for n in nodes if n.leadership.is_leader]
    assert leader.scheduler._task is not None and leader.lag._monitor.running
    [standby] = [n for n in nodes if n is not leader]
    assert standby.scheduler._task is None and not standby.lag._monitor.running

    duties = leader.scheduler._task
    async with first.engine.connect() as conn:
        pid = await _lock_holder_pid(first)
        assert (await conn.execute(sa.text(f"SELECT pg_terminate_backend({pid})"))).scalar() is True

    await wait_for(lambda: _new_holder(first, pid), timeout=TAKEOVER_BOUND_S, what="a new lock holder")
    await wait_for(lambda: sum(n.leadership.is_leader for n in nodes) == 1, timeout=5, what="one leader")
    # The old leader stopped its duties (and restarted them only if it won the lock again).
    assert leader.scheduler._task is not duties
    assert leader.leadership.elections == (2 if leader.leadership.is_leader else 1)
    for n in nodes:  # the duties run exactly where the lock is
        assert (n.scheduler._task is not None) is n.leadership.is_leader
        assert n.lag._monitor.running is n.leadership.is_leader

    await next(n for n in nodes if n.leadership.is_leader).stop_workers()
    await wait_for(lambda: sum(n.leadership.is_leader for n in nodes) == 1, timeout=TAKEOVER_BOUND_S,
                   what="the other node to take over from one that stopped")


async def _new_holder(node, old_pid: int) -> bool:
    pid = await _lock_holder_pid(node)
    return pid is not None and pid != old_pid


async def test_on_sqlite_the_one_process_is_leader(cluster):
    if cluster.dbs.backend != "sqlite":
        pytest.skip("the SQLite model")
    node = await cluster.node("cpo", CPO)
    await wait_for(lambda: node.leadership.is_leader, timeout=5, what="leadership")
    assert node.scheduler._task is not None and node.lag._monitor.running


async def test_a_leader_whose_session_is_ended_stops_at_once(cluster):
    """The server ends the lock's session (pg_terminate_backend): the leader
    stops its duties as the socket closes, not at its next check (here a
    minute away), since the lock is already free for a standby."""
    _need_postgresql(cluster)
    engine = create_engine(await cluster.dbs.new("election"))
    events: list[str] = []

    async def lead() -> None:
        events.append("lead")

    async def follow() -> None:
        events.append("follow")

    leadership = Leadership(engine, lead, follow, retry_s=60.0)
    try:
        leadership.start()
        await wait_for(lambda: events == ["lead"], timeout=10, what="the election")
        pid = await _lock_holder_pid_on(engine)
        async with engine.connect() as conn:
            await conn.execute(sa.text(f"SELECT pg_terminate_backend({pid})"))
        ended_at = time.monotonic()
        await wait_for(lambda: events[:2] == ["lead", "follow"], timeout=10, what="the leader to stop its duties")
        assert time.monotonic() - ended_at < CHECK_TIMEOUT_S
        # Alone on this database, it wins the lock again on a new session.
        await wait_for(lambda: events == ["lead", "follow", "lead"], timeout=10, what="re-election")
        assert leadership.is_leader and leadership.elections == 2
        assert await _lock_holder_pid_on(engine) not in (None, pid)
    finally:
        await leadership.stop()
        await engine.dispose()
    assert events[-1] == "follow" and not leadership.is_leader
