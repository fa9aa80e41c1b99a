"""Durable delivery under faults (issue 4, "Faults").

1. The eMSP is down while the CPO makes 200 changes; when it is back it holds
   exactly the CPO's latest state of every object.
2. The CPO process is SIGKILLed with deliveries pending; after a restart they
   all arrive.
3. In both, no delivery reaches the partner twice, and no older version
   arrives after a newer one. A delivery whose outcome we could not learn
   (in flight at the kill, or timed out) is checked at the partner with a GET
   before it is sent again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa

from evroam.config import NodeConfig
from evroam.node import Node
from evroam.ocpi.types import format_datetime
from evroam.modules.events import Received
from evroam.store import calllog, objects
from tests.nodes import wait_for
from tests.partners import BASE, CPO, EMSP, change, holds_exactly, latest_ours, received
from tests.services import FAST_RETRY, free_port, process_home, run, serve_process, terminated



class Receipts:
    """What the partner applied, in order, per object."""

    def __init__(self) -> None:
        self.by_id: dict[str, list[str]] = defaultdict(list)

    def attach(self, node: Node) -> None:
        @node.on(Received.TARIFF)
        async def _received(tariff, party):
            self.by_id[tariff.id].append(format_datetime(tariff.last_updated))

    def assert_monotonic(self) -> None:
        for oid, versions in self.by_id.items():
            assert versions == sorted(set(versions)), f"{oid}: applied twice or out of order: {versions}"


async def test_partner_down_during_200_changes(cluster):
    cpo = await cluster.node("cpo", CPO, **FAST_RETRY)
    emsp = await cluster.node("emsp", EMSP)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(versions_url, token_a)
    receipts = Receipts()

    emsp_config = emsp.config
    await emsp.stop()
    cluster.nodes.remove(emsp)
    for i in range(200):
        await cpo.publish("tariffs", change(i, 50))
    latest = await latest_ours(cpo.engine, 50)
    # Changes coalesce: at most one pending delivery per object.
    async with cpo.engine.connect() as conn:
        from evroam.store import outbox
        assert sum(n for (_, st), n in (await outbox.counts(conn)).items() if st == "PENDING") == 50

    fresh = Node(emsp_config)
    receipts.attach(fresh)
    cluster.nodes.append(fresh)
    from evroam.node import bind_socket
    await fresh.serve_in_background(bind_socket("127.0.0.1", emsp_config.port))
    await wait_for(lambda: holds_exactly(fresh, party.id, latest), timeout=30, what="the eMSP to hold the CPO's latest state")
    await wait_for(lambda: _outbox_empty(cpo), timeout=10, what="the outbox to drain")
    receipts.assert_monotonic()
    # A refused connection is certain: nothing was sent, so nothing is checked
    # (no GET) and nothing is sent twice.
    assert Counter(m for m, _ in await inbound(fresh, "/tariffs/")) == {"PUT": 50}
    # Only the latest version of each object was ever delivered.
    assert all(v[-1] == json.loads(latest[oid])["last_updated"] for oid, v in receipts.by_id.items())
    assert sum(len(v) for v in receipts.by_id.values()) == 50


async def _outbox_empty(node: Node) -> bool:
    from evroam.store import outbox

    async with node.engine.connect() as conn:
        return not await outbox.counts(conn)


@pytest.mark.timeout(180)
async def test_cpo_killed_with_deliveries_pending(cluster, tmp_path):
    """The CPO runs as a real `evroam serve` process and is SIGKILLed mid-delivery."""
    port = free_port()
    home = process_home(tmp_path / "cpo-proc", port, await cluster.dbs.new("cpo-proc"),
                        role="CPO", country="NL", party="CPO")

    def serve() -> subprocess.Popen:
        return serve_process(home, port, tmp_path / "serve.err")

    proc = serve()
    receipts = Receipts()
    emsp = await cluster.node("emsp", EMSP, serve=False)
    receipts.attach(emsp)
    from evroam.node import bind_socket
    await emsp.serve_in_background(bind_socket("127.0.0.1", emsp.config.port))
    invite = json.loads(run("partners", "invite", "--home", str(home), "--name", "emsp", "--json").stdout)
    party = await emsp.handshake.register(invite["versions_url"], invite["token"])

    # Our own writer on the CPO's database, as the admin API or an import would be.
    writer = Node(NodeConfig.load(home))
    await writer.start()
    try:
        total, n = 240, 60
        for i in range(total // 2):
            await writer.publish("tariffs", change(i, n))
        await wait_for(lambda: sum(map(len, receipts.by_id.values())) >= 10, timeout=30,
                       what="deliveries under way")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for i in range(total // 2, total):
            await writer.publish("tariffs", change(i, n))
        latest = await latest_ours(writer.engine, n)
    finally:
        await writer.stop()

    proc = serve()
    try:
        await wait_for(lambda: holds_exactly(emsp, party.id, latest), timeout=60,
                       what="every pending delivery to arrive after the restart")
    finally:
        terminated(proc, tmp_path / "serve.err")
    receipts.assert_monotonic()
    await emsp.call_log.flush()
    rows = [r for r in await calllog.recent(emsp.engine, limit=5000) if r["direction"] == "in"]
    # 499: the killed process's request was cut off before its body arrived;
    # it never reached the receiver's handler.
    cut_off = sum(1 for r in rows if r["method"] == "PUT" and r["http_status"] == 499)
    sent = Counter((json.loads(r["request_body"])["id"], json.loads(r["request_body"])["last_updated"])
                   for r in rows if r["method"] == "PUT" and r["http_status"] != 499)
    # Not only applied once: no version reached the partner twice over HTTP.
    # What the killed process had in flight was checked with a GET first.
    assert [v for v, n in sent.items() if n > 1] == []
    assert sum(sent.values()) == sum(map(len, receipts.by_id.values()))
    checks = sum(1 for r in rows if r["method"] == "GET" and "/tariffs/" in r["url"])
    print(f"PUTs received: {sum(sent.values())}, cut off by the kill: {cut_off}, checks after it: {checks}")


async def test_claims_of_dead_processes_are_released_not_those_of_live_ones(cluster):
    """A SIGKILLed worker's leased rows go back in line at the next start;
    rows leased by a live process (this one) stay leased."""
    import socket

    import sqlalchemy as sa

    from evroam.store import outbox
    from evroam.store.tables import outbox as outbox_tbl
    from evroam.sync.delivery import _pid_alive

    cpo = await cluster.node("cpo", CPO, run_workers=False)
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await cpo.handshake.invite("emsp")
    await emsp.handshake.register(url, token_a)
    await cpo.publish("tariffs", change(0, 2))
    await cpo.publish("tariffs", change(1, 2))
    host = socket.gethostname()
    dead_pid = 2**22 + 12345  # above Linux's default pid_max: never a live process
    async with cpo.engine.begin() as conn:
        claimed = await outbox.claim(conn, "unused", batch=2)
        await conn.execute(outbox_tbl.update().where(outbox_tbl.c.id == claimed[0].id)
                           .values(claimed_by=f"{host}:{dead_pid}:x"))
        await conn.execute(outbox_tbl.update().where(outbox_tbl.c.id == claimed[1].id)
                           .values(claimed_by=f"{host}:{os.getpid()}:x"))
        assert await outbox.release_orphans(conn, host, _pid_alive) == 1
        rows = dict((await conn.execute(sa.select(outbox_tbl.c.id, outbox_tbl.c.claimed_by))).all())
    assert rows == {claimed[0].id: None, claimed[1].id: f"{host}:{os.getpid()}:x"}


async def inbound(node: Node, path_part: str) -> list[tuple[str, str]]:
    """(method, path) of the calls `node` received whose URL contains `path_part`, oldest first."""
    await node.call_log.flush()
    rows = await calllog.recent(node.engine, limit=5000)
    return [(r["method"], r["url"].split("/ocpi/", 1)[-1]) for r in reversed(rows)
            if r["direction"] == "in" and path_part in r["url"]]


async def test_timed_out_delivery_is_checked_at_the_partner_not_sent_twice(cluster):
    """The partner applies a PUT but answers after our timeout: we do not know
    it arrived. Before sending again we GET its copy, find our version there,
    and send nothing more."""
    cpo = await cluster.node("cpo", CPO, outbound_timeout_s=0.5, **FAST_RETRY)
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(url, token_a)
    release = asyncio.Event()
    applied = []

    @emsp.on(Received.TARIFF)
    async def _slow(tariff, p):
        applied.append(tariff.last_updated)
        await release.wait()  # stored and committed; only the answer is late

    try:
        await cpo.publish("tariffs", change(7, 1))
        await wait_for(lambda: _outbox_empty(cpo), timeout=20, what="the delivery to be settled")
    finally:
        release.set()
    assert cpo.delivery.already_held == 1
    assert len(applied) == 1
    latest = await latest_ours(cpo.engine, 1)
    assert await holds_exactly(emsp, party.id, latest)
    await wait_for(lambda: _calls_logged(emsp, 2), what="the late PUT to be logged")
    assert sorted(await inbound(emsp, "/tariffs/")) == [("GET", "2.2.1/receiver/tariffs/NL/CPO/T000"),
                                                          ("PUT", "2.2.1/receiver/tariffs/NL/CPO/T000")]


async def _calls_logged(node: Node, n: int) -> bool:
    return len(await inbound(node, "/tariffs/")) >= n


async def test_deliveries_of_a_killed_worker_are_checked_before_they_are_sent_again(cluster):
    """What a SIGKILL leaves behind, made deterministic: rows leased by a dead
    process, one of which that process had already sent (a PUT and an EVSE
    PATCH), one it had not. The next worker GETs each from the partner, sends
    only what is missing, and sends nothing twice."""
    import socket

    from evroam.ocpi.locations import Location
    from evroam.store import outbox
    from evroam.store import parties as party_repo
    from evroam.store.tables import outbox as outbox_tbl
    from evroam.modules.locations import owner as ours
    from evroam.sync.delivery import DeliveryWorker
    from tests.builders import evse, location

    cpo = await cluster.node("cpo", CPO, run_workers=False, **FAST_RETRY)
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(url, token_a)
    await cpo.publish("locations", Location.from_wire(location(evses=[evse("E1"), evse("E2")])))
    assert await cpo.delivery.run_once() == 1  # the Location is at the eMSP

    await ours.set_evse_status(cpo, "LOC1", "E2", "CHARGING", at=BASE)
    await cpo.publish("tariffs", change(0, 2))
    await cpo.publish("tariffs", change(1, 2))
    dead = DeliveryWorker(cpo.engine, cpo.client)
    dead.worker_id = f"{socket.gethostname()}:{2**22 + 4321}:dead"  # above pid_max: never alive
    async with cpo.engine.begin() as conn:
        claimed = await outbox.claim(conn, dead.worker_id, batch=10)
        party_at_cpo = await party_repo.get(conn, claimed[0].party_id)
    assert [d.method for d in claimed] == ["PATCH", "PUT", "PUT"]
    # The dead process had sent the EVSE PATCH and tariff T000 before it died.
    for d in claimed[:2]:
        async with cpo.engine.connect() as conn:
            data = (await objects.get_by_pk(conn, d.object_pk)).data
        assert (await dead._send(party_at_cpo, dead._request(d, party_at_cpo, data))).error is None

    cpo.start_workers()  # releases the dead process's claims, marked unsure
    await wait_for(lambda: _outbox_empty(cpo), timeout=20, what="the outbox to drain")
    assert cpo.delivery.already_held == 2
    assert await received(emsp, party.id, "locations", "LOC1") == await received(cpo, 0, "locations", "LOC1")
    assert await holds_exactly(emsp, party.id, await latest_ours(cpo.engine, 2))
    calls = await inbound(emsp, "/receiver/")
    loc, evse, t0, t1 = ("2.2.1/receiver/locations/NL/CPO/LOC1", "2.2.1/receiver/locations/NL/CPO/LOC1/E2",
                         "2.2.1/receiver/tariffs/NL/CPO/T000", "2.2.1/receiver/tariffs/NL/CPO/T001")
    # Before the death: the Location, then what the dead process sent.
    assert calls[:3] == [("PUT", loc), ("PATCH", evse), ("PUT", t0)]
    # After it (concurrently, so in any order): each unsure row checked once;
    # only T001, which the partner lacked, is sent, after its check.
    assert sorted(calls[3:]) == [("GET", evse), ("GET", t0), ("GET", t1), ("PUT", t1)]
    assert calls.index(("GET", t1)) < calls.index(("PUT", t1))
    async with cpo.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(outbox_tbl))).scalar() == 0


async def test_a_put_that_already_carried_a_queued_change_is_not_sent_again(cluster):
    """A PUT reads the object when it is sent, so it may carry a change queued
    after the row was claimed. That change is then delivered already and must
    not go out a second time; a change made after the send still goes out."""
    from evroam.store import outbox

    cpo = await cluster.node("cpo", CPO, run_workers=False)
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(url, token_a)
    worker = cpo.delivery

    await cpo.publish("tariffs", change(0, 1))
    async with cpo.engine.begin() as conn:
        (d,) = await outbox.claim(conn, worker.worker_id)
    await cpo.publish("tariffs", change(1, 1))  # queued between the claim and the send
    await worker._record(d, await worker._attempt(d))
    assert await _outbox_empty(cpo)

    await cpo.publish("tariffs", change(2, 1))
    async with cpo.engine.begin() as conn:
        (d,) = await outbox.claim(conn, worker.worker_id)
    outcome = await worker._attempt(d)
    await cpo.publish("tariffs", change(3, 1))  # after the send: the partner lacks it
    await worker._record(d, outcome)
    assert not await _outbox_empty(cpo)
    assert await worker.run_once() == 1
    assert await _outbox_empty(cpo)

    await emsp.call_log.flush()
    puts = [json.loads(r["request_body"])["last_updated"] for r in reversed(await calllog.recent(emsp.engine))
            if r["direction"] == "in" and r["method"] == "PUT"]
    assert puts == [format_datetime(BASE + timedelta(seconds=i)) for i in (1, 2, 3)]
    assert await holds_exactly(emsp, party.id, await latest_ours(cpo.engine, 1))
