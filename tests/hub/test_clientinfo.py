"""HubClientInfo on the Hub (mod_hub_client_info): the statuses it pushes,
its paginated list, and liveness; and what a HUB node presents."""

from __future__ import annotations

import time

import aiohttp

from evroam.hub.layer import routed_module
from evroam.module import REGISTRY
from evroam.modules.hubclientinfo import owner
from evroam.ocpi import headers as H
from evroam.ocpi.hubclientinfo import ConnectionStatus
from tests.clientinfo import ROUTING, client_info, hub_status, join, recorded_node, status_at
from tests.hubnet import CPO1, CPO2, EMSP1, Net, call, hub_network
from tests.nodes import wait_for
from tests.partners import outbox_rows


async def test_a_hub_lists_only_itself_and_both_interfaces_of_every_routed_module(cluster):
    net = await hub_network(cluster, {"emsp": EMSP1})
    hub = net.hub_at["emsp"]
    assert [(r["role"], r["country_code"], r["party_id"]) for r in hub.roles] == [("HUB", "NL", "HUB")]
    details_url = f"{net.hub.config.public_url}/ocpi/2.2.1"
    status, env, headers = await call("GET", details_url, hub.token_out)
    assert (status, env["status_code"]) == (200, 1000)
    published = {(e["identifier"], e["role"]) for e in env["data"]["endpoints"]}
    routed = {(m, iface.value) for m in REGISTRY if routed_module(m) is not None
              for iface in set(REGISTRY[m].interfaces.values())}
    assert routed >= {("locations", "SENDER"), ("locations", "RECEIVER"), ("tokens", "SENDER"),
                      ("commands", "RECEIVER"), ("cdrs", "SENDER")}
    assert published == routed | {("credentials", "SENDER"), ("hubclientinfo", "SENDER")}
    assert not ROUTING & set(headers)


async def test_a_platform_with_several_roles_is_a_party_per_role(cluster):
    both = [("CPO", "NL", "CPO"), ("EMSP", "NL", "EMP")]
    net = await hub_network(cluster, {"emsp": EMSP1, "both": both})
    reg = await net.at_hub("both")
    directory = await net.hub.hub.directory.get()
    assert [(p.role.value, p.country_code, p.party_id, p.status.value) for p in directory.roles_of(reg.id)] == [
        ("CPO", "NL", "CPO", "CONNECTED"), ("EMSP", "NL", "EMP", "CONNECTED")]
    assert directory.find("nl", "emp").registration.id == reg.id
    await wait_for(lambda: _both_known(net), what="both roles' ClientInfo at the eMSP")
    assert (await client_info(net, "emsp", "NL", "EMP"))["role"] == "EMSP"


async def _both_known(net: Net) -> bool:
    return (await status_at(net, "emsp", "NL", "CPO"), await status_at(net, "emsp", "NL", "EMP")) == (
        "CONNECTED", "CONNECTED")


async def test_a_registration_pushes_connected_to_every_other_party_without_routing_headers(cluster):
    net = await hub_network(cluster, {})
    emsp, seen = await recorded_node(cluster, "emsp", EMSP1)
    await join(net, "emsp", emsp)
    await join(net, "cpo", await cluster.node("cpo", CPO1))
    await wait_for(lambda: status_at(net, "emsp", "NL", "CPO"), what="the CPO's ClientInfo at the eMSP")
    doc = await client_info(net, "emsp", "NL", "CPO")
    assert doc == {"party_id": "CPO", "country_code": "NL", "role": "CPO", "status": "CONNECTED",
                   "last_updated": doc["last_updated"]}
    assert await hub_status(net, "cpo") == "CONNECTED"
    [put] = [s for s in seen if s.method == "PUT" and s.path.endswith("/NL/CPO")]
    assert put.path == "/ocpi/2.2.1/receiver/hubclientinfo/NL/CPO"
    assert not ROUTING & set(put.headers), put.headers
    # Nor on the party's answers: the Hub's own GET of what the eMSP holds.
    emsp_at_hub = await net.at_hub("emsp")
    url = emsp_at_hub.endpoint_url("hubclientinfo", "RECEIVER").rstrip("/") + "/NL/CPO"
    status, env, headers = await call("GET", url, emsp_at_hub.token_out)
    assert (status, env["status_code"], env["data"]) == (200, 1000, doc)
    assert not ROUTING & set(headers)
    # A party is not told its own status, and a newcomer pulls the others' (the spec's GET after connecting).
    assert await status_at(net, "cpo", "NL", "CPO") is None
    assert await status_at(net, "cpo", "DE", "EMS") is None


async def test_the_sender_list_is_paginated_with_link_and_no_routing_headers(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "cpo2": CPO2, "emsp": EMSP1})
    url = net.url("emsp", "hubclientinfo", "SENDER") + "?limit=1"
    seen = []
    while url:
        status, env, headers = await _get(url, net.token("emsp"))
        assert (status, env["status_code"], headers["x-total-count"], headers["x-limit"]) == (200, 1000, "3", "100")
        assert not ROUTING & set(headers)
        seen += [(d["country_code"], d["party_id"], d["role"], d["status"]) for d in env["data"]]
        url = _next(headers.get("link"))
    assert seen == [("NL", "CPO", "CPO", "CONNECTED"), ("BE", "CP2", "CPO", "CONNECTED"),
                    ("DE", "EMS", "EMSP", "CONNECTED")]


async def _get(url: str, token: str):
    async with aiohttp.ClientSession() as s, s.get(url, headers={"Authorization": H.encode_token(token)}) as r:
        return r.status, await r.json(), {k.lower(): v for k, v in r.headers.items()}


def _next(link: str | None) -> str | None:
    if not link:
        return None
    assert link.endswith('>; rel="next"'), link
    return link[1:link.index(">")]


async def test_an_unregistration_is_suspended_for_the_others(cluster):
    net = await hub_network(cluster, {"emsp": EMSP1, "cpo": CPO1})
    await wait_for(lambda: status_at(net, "emsp", "NL", "CPO"), what="CONNECTED first")
    assert await net["cpo"].handshake.unregister(net.hub_at["cpo"].name) is None
    await wait_for(lambda: _is(net, "emsp", ("NL", "CPO"), "SUSPENDED"), what="SUSPENDED at the eMSP")
    directory = await net.hub.hub.directory.get()
    assert directory.find("NL", "CPO") is None


async def _is(net: Net, at: str, key: tuple[str, str], status: str) -> bool:
    return await status_at(net, at, *key) == status


async def test_suspend_drops_what_is_pending_for_the_party_and_resume_connects_it(cluster):
    net = await hub_network(cluster, {"emsp": EMSP1, "cpo": CPO1})
    cpo = await net.at_hub("cpo")
    party, infos = await owner.operator_set(net.hub, cpo.name, ConnectionStatus.SUSPENDED)
    assert [(i.country_code, i.party_id, i.status.value) for i in infos] == [("NL", "CPO", "SUSPENDED")]
    await wait_for(lambda: _is(net, "emsp", ("NL", "CPO"), "SUSPENDED"), what="SUSPENDED at the eMSP")
    directory = await net.hub.hub.directory.get()
    assert directory.find("NL", "CPO").status == ConnectionStatus.SUSPENDED
    # Forwarding to it is refused at once (the directory was invalidated).
    status, env, _ = await call("GET", net.url("emsp", "locations", "SENDER", "L1"), net.token("emsp"),
                                frm=("DE", "EMS"), to=("NL", "CPO"))
    assert (status, env["status_code"]) == (502, 4003)
    assert (await owner.operator_set(net.hub, cpo.name, ConnectionStatus.SUSPENDED))[1] is None
    # A newcomer's CONNECTED is queued for the eMSP, not for the suspended CPO.
    await join(net, "cpo2", await cluster.node("cpo2", CPO2))
    assert await outbox_rows(net.hub, cpo.id) == []
    await wait_for(lambda: _is(net, "emsp", ("BE", "CP2"), "CONNECTED"), what="the newcomer at the eMSP")
    _, infos = await owner.operator_set(net.hub, cpo.name, ConnectionStatus.CONNECTED)
    assert [i.status.value for i in infos] == ["CONNECTED"]
    await wait_for(lambda: _is(net, "emsp", ("NL", "CPO"), "CONNECTED"), what="CONNECTED again at the eMSP")


async def test_liveness_takes_a_stopped_party_offline_and_back(cluster):
    net = await hub_network(cluster, {"emsp": EMSP1, "cpo": CPO1}, hub_liveness_s=0.3, hub_liveness_check_s=0.1)
    await wait_for(lambda: status_at(net, "emsp", "NL", "CPO"), what="CONNECTED first")
    cpo = net["cpo"]
    await cpo.stop()
    await wait_for(lambda: _is(net, "emsp", ("NL", "CPO"), "OFFLINE"), what="OFFLINE at the eMSP")
    assert await hub_status(net, "cpo") == "OFFLINE"
    assert await outbox_rows(net.hub, (await net.at_hub("cpo")).id) == []
    assert await hub_status(net, "emsp") == "CONNECTED"  # the live one stays so
    net.nodes["cpo"] = await cluster.restart(cpo)
    await wait_for(lambda: _is(net, "emsp", ("NL", "CPO"), "CONNECTED"), what="CONNECTED again at the eMSP")
    assert await hub_status(net, "cpo") == "CONNECTED"


async def test_liveness_never_lifts_a_suspension(cluster):
    net = await hub_network(cluster, {"emsp": EMSP1, "cpo": CPO1}, hub_liveness_s=0.2, hub_liveness_check_s=0.05)
    cpo, emsp = await net.at_hub("cpo"), await net.at_hub("emsp")
    await owner.operator_set(net.hub, cpo.name, ConnectionStatus.SUSPENDED)
    await net["cpo"].stop()
    hub = net.hub.hub
    for _ in range(2):  # two rounds in which the silent eMSP was checked
        since = time.monotonic()
        await wait_for(lambda since=since: hub.last_seen.get(emsp.id, 0) > since, what="a liveness round")
    assert await hub_status(net, "cpo") == "SUSPENDED"
    assert net.hub.liveness.failures == {}
