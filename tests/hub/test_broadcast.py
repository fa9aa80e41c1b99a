"""Broadcast Push through the Hub (transport_and_format, "Broadcast Push";
issue 10 point 3): stored and queued in one transaction, delivered to every
connected party of the opposite role FROM = the Hub, coalesced so that no
receiver gets an older version after a newer one, nothing queued for an
OFFLINE party, and nothing lost or sent twice across a SIGKILL of the Hub."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess

import pytest


from evroam.hub.status import drop_pending
from evroam.modules.events import Received
from evroam.node import Node, bind_socket
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.store import calllog, objects
from evroam.store import parties as party_repo
from evroam.store.objects import ObjectKey
from tests.builders import location, session, tariff, token
from tests.hubnet import CPO1, CPO2, EMSP1, EMSP2, Net, call, hub_network
from tests.nodes import wait_for
import sqlalchemy as sa
from evroam.store.tables import outbox as outbox_table
from tests.partners import CPO, EMSP, outbox_rows, party_named
from tests.services import FAST_RETRY, free_port, process_home, run, serve_process

HUB_KEY = ("NL", "HUB")
CPO_KEY = ("NL", "CPO")
NET = {"cpo1": CPO1, "cpo2": CPO2, "emsp1": EMSP1, "emsp2": EMSP2}
V1, V2, V3 = "2026-02-01T10:00:00Z", "2026-02-01T10:01:00Z", "2026-02-01T10:02:00Z"


async def broadcast(net: Net, name: str, frm: tuple[str, str], module: str, method: str, *path: str,
                    body: dict | bytes, query: str = "") -> tuple[int, dict, dict[str, str]]:
    url = net.url(name, module, "RECEIVER", *path) + (f"?{query}" if query else "")
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await call(method, url, net.token(name), frm=frm, to=HUB_KEY, body=raw)


async def held(node: Node, owner_id: int, module: str, cc: str, pid: str, oid: str, type_: str = "") -> dict | None:
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, owner_id, cc, pid, oid, type_))
    return json.loads(s.data) if s else None


async def hub_id_at(node: Node) -> int:
    """The Hub's registration at a party."""
    hub = await party_named(node, "hub") or (await _only_party(node))
    return hub.id


async def _only_party(node: Node):
    async with node.engine.connect() as conn:
        (p,) = await party_repo.list_all(conn)
    return p


async def inbound(node: Node, part: str) -> list[dict]:
    """The calls `node` received whose URL holds `part`, oldest first."""
    await node.call_log.flush()
    rows = await calllog.recent(node.engine, limit=5000)
    return [r for r in reversed(rows) if r["direction"] == "in" and part in r["url"]]


def assert_hub_answer(status: int, env: dict, headers: dict[str, str], to: tuple[str, str]) -> None:
    assert (status, env["status_code"]) == (200, 1000), env
    assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == HUB_KEY
    assert (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]) == to


async def test_a_location_put_and_evse_patch_reach_every_emsp_and_no_cpo(cluster):
    net = await hub_network(cluster, NET)
    status, env, headers = await broadcast(net, "cpo1", CPO_KEY, "locations", "PUT", "NL", "CPO", "L1",
                                           body=location("L1", updated=V1))
    assert_hub_answer(status, env, headers, CPO_KEY)
    assert env.get("data") is None
    # Delivered before the PATCH is sent: else the two coalesce into one PUT of the latest.
    await wait_for(lambda: _drained(net.hub), timeout=20, what="the PUT to be delivered")
    status, env, headers = await broadcast(net, "cpo1", CPO_KEY, "locations", "PATCH", "NL", "CPO", "L1", "E1",
                                           body={"status": "CHARGING", "last_updated": V2})
    assert_hub_answer(status, env, headers, CPO_KEY)
    for name in ("emsp1", "emsp2"):
        node, hub_id = net[name], await hub_id_at(net[name])

        async def charging(node=node, hub_id=hub_id) -> bool:
            doc = await held(node, hub_id, "locations", "NL", "CPO", "L1")
            return doc is not None and doc["evses"][0]["status"] == "CHARGING"

        await wait_for(charging, timeout=20, what=f"{name} to hold L1 with E1 CHARGING")
        doc = await held(node, hub_id, "locations", "NL", "CPO", "L1")
        assert (doc["country_code"], doc["party_id"], doc["last_updated"]) == ("NL", "CPO", V2)
        assert doc["evses"][0]["last_updated"] == V2
        calls = [(r["method"], r["url"].split("/receiver/locations/", 1)[1]) for r in await inbound(node, "/locations/")]
        assert calls == [("PUT", "NL/CPO/L1"), ("PATCH", "NL/CPO/L1/E1")]
        put, patch = await inbound(node, "/locations/")
        assert json.loads(put["request_body"]) == location("L1", updated=V1)
        assert json.loads(patch["request_body"]) == {"status": "CHARGING", "last_updated": V2}
        assert put["party_id"] == patch["party_id"] == hub_id  # sent with the Hub's token
    # Neither the other CPO nor the sender got anything.
    for name in ("cpo1", "cpo2"):
        assert await inbound(net[name], "/locations/") == []
    # The Hub keeps the object under the caller's registration and the owner's cc/pid.
    cpo1_at_hub = await net.at_hub("cpo1")
    assert (await held(net.hub, cpo1_at_hub.id, "locations", "NL", "CPO", "L1"))["last_updated"] == V2
    await wait_for(lambda: _drained(net.hub), timeout=20, what="the Hub's outbox to drain")


async def _drained(node: Node) -> bool:
    return not await outbox_rows(node)


async def _broadcast_rows(node) -> list[tuple[str, int]]:
    """The Hub's pending deliveries of broadcasts, without the ClientInfo
    pushes every registration queues (modules/hubclientinfo/owner.py)."""
    async with node.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(
            sa.select(outbox_table.c.status, outbox_table.c.party_id)
            .where(outbox_table.c.module != "hubclientinfo").order_by(outbox_table.c.id))]


async def test_deliveries_go_from_the_hub(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1})
    await broadcast(net, "cpo1", CPO_KEY, "locations", "PUT", "NL", "CPO", "L1", body=location("L1", updated=V1))
    emsp, hub_id = net["emsp1"], await hub_id_at(net["emsp1"])
    await wait_for(lambda: held(emsp, hub_id, "locations", "NL", "CPO", "L1"), timeout=20, what="L1 at the eMSP")
    (row,) = await inbound(emsp, "/locations/")
    assert row["party_id"] == hub_id  # the Hub's token
    hub_log = [r for r in await _outbound(net.hub) if "/locations/" in r["url"]]
    assert [r["method"] for r in hub_log] == ["PUT"]
    assert hub_log[0]["url"].endswith("/receiver/locations/NL/CPO/L1")


async def _outbound(node: Node) -> list[dict]:
    await node.call_log.flush()
    return [r for r in reversed(await calllog.recent(node.engine, limit=5000)) if r["direction"] == "out"]


async def test_an_emsp_token_broadcast_reaches_both_cpos(cluster):
    net = await hub_network(cluster, NET)
    tok = token("APP-1", "DE", "EMS", last_updated=V1)
    status, env, headers = await broadcast(net, "emsp1", ("DE", "EMS"), "tokens", "PUT", "DE", "EMS", "APP-1",
                                           body=tok, query="type=APP_USER")
    assert_hub_answer(status, env, headers, ("DE", "EMS"))
    for name in ("cpo1", "cpo2"):
        node, hub_id = net[name], await hub_id_at(net[name])
        await wait_for(lambda node=node, hub_id=hub_id: held(node, hub_id, "tokens", "DE", "EMS", "APP-1", "APP_USER"),
                       timeout=20, what=f"{name} to hold the token")
        assert (await held(node, hub_id, "tokens", "DE", "EMS", "APP-1", "APP_USER"))["last_updated"] == V1
        (row,) = await inbound(node, "/tokens/")
        assert row["method"] == "PUT" and "type=APP_USER" in row["url"]
    assert await inbound(net["emsp2"], "/tokens/") == []


async def test_a_session_to_the_hub_is_refused_4001(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1})
    status, env, headers = await broadcast(net, "cpo1", CPO_KEY, "sessions", "PUT", "NL", "CPO", "S1",
                                           body=session("S1"))
    assert (status, env["status_code"]) == (404, 4001)
    assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == HUB_KEY
    assert await _broadcast_rows(net.hub) == []


async def test_invalid_broadcasts_write_nothing(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1})
    cases = [
        ("PUT", ("NL", "CPO", "L1"), b"{not json", (400, 2000, "request body is not valid JSON")),
        ("PUT", ("NL", "CPO", "L1"), {"id": "L1"}, (200, 2001, None)),
        ("PUT", ("NL", "XXX", "L1"), location("L1", pid="XXX"), (400, 2001, "is not the party that sends")),
        ("PUT", ("NL", "CPO", "L2"), location("L1"), (200, 2001, "differs from")),
        ("PATCH", ("NL", "CPO", "L1"), [1, 2], (200, 2001, "PATCH body must be a JSON object")),
        ("PATCH", ("NL", "CPO", "L1"), {"status": "X"}, (200, 2001, "last_updated: required")),
        ("PATCH", ("NL", "CPO", "L1", "E1"), {"status": "CHARGING", "last_updated": V1}, (404, 2000, "PUT it first")),
        ("POST", ("NL", "CPO", "L1"), location("L1"), (405, 2000, "takes PUT and PATCH")),
    ]
    for method, path, body, (http, code, text) in cases:
        status, env, headers = await broadcast(net, "cpo1", CPO_KEY, "locations", method, *path, body=body)
        assert (status, env["status_code"]) == (http, code), (method, path, env)
        assert text is None or text in env["status_message"], env
        assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == HUB_KEY
    assert await _broadcast_rows(net.hub) == []
    cpo1_at_hub = await net.at_hub("cpo1")
    assert await held(net.hub, cpo1_at_hub.id, "locations", "NL", "CPO", "L1") is None


async def test_an_older_put_is_kept_out_and_not_queued(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1}, run_workers=False)
    await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1", body=tariff("T1", updated=V2))
    assert len(await _broadcast_rows(net.hub)) == 1
    status, env, _ = await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1",
                                     body=tariff("T1", price=0.99, updated=V1))
    assert (status, env["status_code"]) == (200, 1000)
    cpo1_at_hub = await net.at_hub("cpo1")
    assert (await held(net.hub, cpo1_at_hub.id, "tariffs", "NL", "CPO", "T1"))["last_updated"] == V2
    assert len(await _broadcast_rows(net.hub)) == 1


async def test_a_non_hub_partner_still_writes_only_under_its_own_roles(cluster):
    cpo = await cluster.node("cpo", CPO)
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await emsp.handshake.invite("cpo")
    at_emsp = await cpo.handshake.register(url, token_a)
    base = at_emsp.endpoint_url("locations", "RECEIVER").rstrip("/")
    status, env, _ = await call("PUT", f"{base}/BE/OTH/L1", at_emsp.token_out,
                                body=json.dumps(location("L1", "BE", "OTH")).encode())
    assert (status, env["status_code"]) == (404, 2000)
    assert "is not among the roles you registered with" in env["status_message"]




async def take_down(cluster, node: Node):
    """Stop a party's node; its config brings it back on the same port and database."""
    await node.stop()
    cluster.nodes.remove(node)
    return node.config


async def bring_up(cluster, config) -> Node:
    fresh = Node(config)
    cluster.nodes.append(fresh)
    await fresh.serve_in_background(bind_socket("127.0.0.1", config.port))
    return fresh


def put_versions(calls: list[dict]) -> list[tuple[str, str]]:
    """(id, last_updated) of each PUT that reached the receiver's handler, in order."""
    out = []
    for r in calls:
        if r["method"] == "PUT" and r["http_status"] != 499:
            doc = json.loads(r["request_body"])
            out.append((doc["id"], doc["last_updated"]))
    return out


async def test_a_receiver_that_was_down_gets_the_latest_version_only(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1}, **FAST_RETRY)
    config = await take_down(cluster, net["emsp1"])
    for v in (V1, V2, V3):
        status, env, _ = await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1",
                                         body=tariff("T1", updated=v))
        assert (status, env["status_code"]) == (200, 1000)
    # Coalesced: one pending delivery for the object, whatever was tried meanwhile.
    emsp_at_hub = await net.at_hub("emsp1")
    assert await _broadcast_rows(net.hub) == [("PENDING", emsp_at_hub.id)]
    emsp = await bring_up(cluster, config)
    hub_id = await hub_id_at(emsp)
    await wait_for(lambda: _drained(net.hub), timeout=20, what="the delivery after the receiver is back")
    assert (await held(emsp, hub_id, "tariffs", "NL", "CPO", "T1"))["last_updated"] == V3
    assert put_versions(await inbound(emsp, "/tariffs/")) == [("T1", V3)]


async def test_a_slow_receiver_never_gets_an_older_version_last(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1}, **FAST_RETRY)
    emsp = net["emsp1"]
    gate, arrived = asyncio.Event(), asyncio.Event()

    @emsp.on(Received.TARIFF)
    async def _slow(tariff_, party):  # the receiver holds the first PUT until v2 and v3 are queued
        arrived.set()
        await gate.wait()

    await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1", body=tariff("T1", updated=V1))
    await wait_for(arrived.is_set, timeout=20, what="v1 in flight at the receiver")
    for v in (V2, V3):
        await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1", body=tariff("T1", updated=v))
    gate.set()
    hub_id = await hub_id_at(emsp)
    await wait_for(lambda: _drained(net.hub), timeout=20, what="v3 to follow v1")
    assert (await held(emsp, hub_id, "tariffs", "NL", "CPO", "T1"))["last_updated"] == V3
    assert put_versions(await inbound(emsp, "/tariffs/")) == [("T1", V1), ("T1", V3)]


async def set_hub_status(net: Net, name: str, status: ConnectionStatus) -> None:
    """What the HubClientInfo helper does when a party goes OFFLINE or comes back."""
    reg = await net.at_hub(name)
    async with net.hub.engine.begin() as conn:
        await party_repo.update(conn, reg.id, hub_status=status.value)
        if status != ConnectionStatus.CONNECTED:
            await drop_pending(conn, reg.id)
    net.hub.hub.directory.invalidate()


async def test_an_offline_party_gets_nothing_queued_and_nothing_when_back(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1, "emsp2": EMSP2})
    await set_hub_status(net, "emsp2", ConnectionStatus.OFFLINE)
    await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1", body=tariff("T1", updated=V1))
    emsp2_at_hub = await net.at_hub("emsp2")
    assert all(pid != emsp2_at_hub.id for _, pid in await _broadcast_rows(net.hub))
    await set_hub_status(net, "emsp2", ConnectionStatus.CONNECTED)
    # A later broadcast arrives: had T1 been kept for emsp2, it would have come first.
    await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T2", body=tariff("T2", updated=V2))
    emsp2, hub_id = net["emsp2"], await hub_id_at(net["emsp2"])
    await wait_for(lambda: held(emsp2, hub_id, "tariffs", "NL", "CPO", "T2"), timeout=20, what="T2 at emsp2")
    await wait_for(lambda: _drained(net.hub), timeout=20, what="the Hub's outbox to drain")
    assert await held(emsp2, hub_id, "tariffs", "NL", "CPO", "T1") is None
    assert put_versions(await inbound(emsp2, "/tariffs/")) == [("T2", V2)]
    assert put_versions(await inbound(net["emsp1"], "/tariffs/")) == [("T1", V1), ("T2", V2)]


async def test_a_delivery_queued_before_a_party_went_offline_is_dropped(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1, "emsp2": EMSP2}, run_workers=False)
    await net.hub.delivery.run_once()  # the registrations' ClientInfo pushes, out of the way
    await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1", body=tariff("T1", updated=V1))
    assert len(await _broadcast_rows(net.hub)) == 2
    reg = await net.at_hub("emsp2")
    async with net.hub.engine.begin() as conn:  # OFFLINE, its pending rows not yet dropped
        await party_repo.update(conn, reg.id, hub_status=ConnectionStatus.OFFLINE.value)
    assert await net.hub.delivery.run_once() == 2
    assert await _broadcast_rows(net.hub) == []
    assert await inbound(net["emsp2"], "/tariffs/") == []
    assert put_versions(await inbound(net["emsp1"], "/tariffs/")) == [("T1", V1)]


async def test_drop_pending_removes_only_that_partys_rows(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp1": EMSP1, "emsp2": EMSP2}, run_workers=False)
    await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", "T1", body=tariff("T1", updated=V1))
    emsp1, emsp2 = await net.at_hub("emsp1"), await net.at_hub("emsp2")
    async with net.hub.engine.begin() as conn:
        assert await drop_pending(conn, emsp2.id) == 1
    assert await _broadcast_rows(net.hub) == [("PENDING", emsp1.id)]


@pytest.mark.timeout(240)
async def test_a_hub_killed_with_broadcasts_pending_delivers_each_once_and_latest(cluster, tmp_path):
    """The Hub runs as a real `evroam serve` process, SIGKILLed while the
    broadcasts it accepted are pending: emsp1 is down, emsp2 slow."""
    port = free_port()
    home = process_home(tmp_path / "hub-proc", port, await cluster.dbs.new("hub-proc"),
                        role="HUB", country="NL", party="HUB")

    def serve() -> subprocess.Popen:
        return serve_process(home, port, tmp_path / "hub.err")

    proc = serve()
    net = Net(hub=None)  # type: ignore[arg-type]  # the Hub is the process
    for name, roles in {"cpo1": CPO1, "emsp1": EMSP1, "emsp2": EMSP2}.items():
        node = await cluster.node(name, roles)
        invite = json.loads(run("partners", "invite", "--home", str(home), "--name", name, "--json").stdout)
        net.hub_at[name] = await node.handshake.register(invite["versions_url"], invite["token"])
        net.nodes[name] = node
    slow = asyncio.Semaphore(1)

    @net["emsp2"].on(Received.TARIFF)
    async def _slow(tariff_, party):  # one at a time, and slowly: deliveries stay pending
        async with slow:
            await asyncio.sleep(0.05)

    emsp1_config = await take_down(cluster, net["emsp1"])
    n, versions = 30, (V1, V2, V3)
    try:
        for v in versions:
            for k in range(n):
                status, env, _ = await broadcast(net, "cpo1", CPO_KEY, "tariffs", "PUT", "NL", "CPO", f"T{k:02d}",
                                                 body=tariff(f"T{k:02d}", price=k / 100, updated=v))
                assert (status, env["status_code"]) == (200, 1000)
        emsp2 = net["emsp2"]
        await wait_for(lambda: _count_puts(emsp2, 5), timeout=30, what="deliveries under way to emsp2")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc = serve()
        emsp1 = await bring_up(cluster, emsp1_config)
        latest = {f"T{k:02d}": V3 for k in range(n)}
        for node in (emsp1, emsp2):
            hub_id = await hub_id_at(node)
            await wait_for(lambda node=node, hub_id=hub_id: _holds(node, hub_id, latest), timeout=90,
                           what="every object in its latest version after the restart")
            # A call is logged once answered: the slow receiver may still be answering the last ones.
            await wait_for(lambda node=node: _logged(node, latest), timeout=30, what="the last PUTs answered")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # emsp1 was down throughout: it got each object once, in its latest version.
    assert sorted(put_versions(await inbound(emsp1, "/tariffs/"))) == sorted(latest.items())
    # emsp2 got some versions as they came, none twice and none older after a newer one.
    got = put_versions(await inbound(emsp2, "/tariffs/"))
    assert len(got) == len(set(got)), got
    for oid in latest:
        seen = [v for i, v in got if i == oid]
        assert seen == sorted(seen) and seen[-1] == V3, (oid, seen)


async def _logged(node: Node, latest: dict[str, str]) -> bool:
    return set(latest.items()) <= set(put_versions(await inbound(node, "/tariffs/")))


async def _count_puts(node: Node, at_least: int) -> bool:
    return len(put_versions(await inbound(node, "/tariffs/"))) >= at_least


async def _holds(node: Node, hub_id: int, latest: dict[str, str]) -> bool:
    for oid, v in latest.items():
        doc = await held(node, hub_id, "tariffs", "NL", "CPO", oid)
        if doc is None or doc["last_updated"] != v:
            return False
    return True
