"""Pushes of a CPO behind a Hub (docs/hub/behind.md; sync/via_hub.py): real
nodes over real HTTP, a Hub with one CPO and two eMSPs registered with it.

A Session or CDR goes once, TO = its token's eMSP, and reaches that eMSP
only; a Location goes once, TO = the Hub (a Broadcast Push), and reaches
both. To a party the Hub reports OFFLINE nothing is sent until it is
CONNECTED again; to a SUSPENDED one the delivery is dropped. A real-time
authorization goes TO = the token's eMSP, or, for a token the CPO does not
hold, as an Open Routing Request.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.tokens import Token
from evroam.store.tables import objects as objects_table
from evroam.store.outbox import HELD
from tests.behind import CPO, EMSP1, EMSP2, HUB, Wire, drained, held, priced_cdr, report, towards_hub
from tests import builders
from tests.builders import location, session
from tests.clientinfo import status_at
from tests.hubnet import CPO1, EMSP1 as EMSP1_ROLES, EMSP2 as EMSP2_ROLES, hub_network
from tests.nodes import wait_for

pytestmark = pytest.mark.timeout(120)


async def network(cluster, **hub_settings):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp1": EMSP1_ROLES, "emsp2": EMSP2_ROLES}, **hub_settings)
    # Every party knows the others are CONNECTED before the test starts.
    await wait_for(lambda: _known(net), timeout=20, what="the ClientInfo of the others at the CPO")
    return net, Wire.on(net.hub)


async def _known(net) -> bool:
    return all([await status_at(net, "cpo", *k) == "CONNECTED" for k in (EMSP1, EMSP2)])


async def test_a_session_and_a_cdr_reach_the_eMSP_of_their_token_only(cluster):
    net, wire = await network(cluster)
    cpo = net["cpo"]
    await cpo.publish("sessions", Session.from_wire(session("S1")))  # token DE/EMS: emsp1's
    await wait_for(lambda: held(net, "emsp1", "sessions", "NL", "CPO", "S1"), timeout=20, what="S1 at emsp1")
    cdr = priced_cdr("S1")
    await cpo.publish("cdrs", cdr)
    await wait_for(lambda: held(net, "emsp1", "cdrs", "NL", "CPO", cdr.id), timeout=20, what="the CDR at emsp1")
    await wait_for(lambda: drained(net, "cpo"), timeout=20, what="the CPO's outbox to drain")
    assert await held(net, "emsp2", "sessions", "NL", "CPO", "S1") is None
    assert await held(net, "emsp2", "cdrs", "NL", "CPO", cdr.id) is None
    # One request each to the Hub, FROM the CPO, TO the token's eMSP.
    sent = [(c.method, c.path.split("/ocpi/2.2.1/")[1], c.frm, c.to)
            for c in wire.to_module("sessions") + wire.to_module("cdrs")]
    assert sent == [("PUT", "receiver/sessions/NL/CPO/S1", CPO, EMSP1), ("POST", "receiver/cdrs/", CPO, EMSP1)]


async def test_a_location_is_one_broadcast_to_the_hub_and_reaches_both_emsps(cluster):
    net, wire = await network(cluster)
    doc = location("L1")
    await net["cpo"].publish("locations", Location.from_wire(doc))
    for emsp in ("emsp1", "emsp2"):
        await wait_for(lambda e=emsp: held(net, e, "locations", "NL", "CPO", "L1"), timeout=20, what=f"L1 at {emsp}")
        assert await held(net, emsp, "locations", "NL", "CPO", "L1") == doc
    await wait_for(lambda: drained(net, "cpo"), timeout=20, what="the CPO's outbox to drain")
    from_cpo = [c for c in wire.to_module("locations") if c.frm == CPO]
    assert [(c.method, c.path.split("/ocpi/2.2.1/")[1], c.to) for c in from_cpo] == [
        ("PUT", "receiver/locations/NL/CPO/L1", HUB)]


async def test_nothing_goes_to_an_offline_emsp_until_it_is_connected_again(cluster):
    net, wire = await network(cluster)
    await report(net, "emsp1", ConnectionStatus.OFFLINE, seen_by="cpo")
    await net["cpo"].publish("sessions", Session.from_wire(session("S1")))

    async def is_held() -> bool:
        rows = await towards_hub(net, "cpo", "sessions")
        return len(rows) == 1 and (rows[0]["last_error"] or "").startswith(HELD)

    await wait_for(is_held, timeout=20, what="the session's delivery held")
    (row,) = await towards_hub(net, "cpo", "sessions")
    assert (row["status"], row["attempts"], row["last_error"]) == ("PENDING", 0, HELD + "DE/EMS is OFFLINE at the Hub")
    assert wire.to_module("sessions") == []
    # Back: the ClientInfo PUT releases it at once (its next look would be a minute away).
    await report(net, "emsp1", ConnectionStatus.CONNECTED, seen_by="cpo")
    await wait_for(lambda: held(net, "emsp1", "sessions", "NL", "CPO", "S1"), timeout=20, what="S1 at emsp1")
    await wait_for(lambda: drained(net, "cpo"), timeout=20, what="the CPO's outbox to drain")
    assert [(c.frm, c.to) for c in wire.to_module("sessions")] == [(CPO, EMSP1)]


async def test_a_planned_emsp_is_held_too_and_the_hold_costs_no_attempt(cluster):
    net, wire = await network(cluster)
    await report(net, "emsp1", ConnectionStatus.PLANNED, seen_by="cpo")
    cpo = net["cpo"]
    await cpo.stop_workers()
    await cpo.publish("sessions", Session.from_wire(session("S1")))
    for _ in range(3):
        async with cpo.engine.begin() as conn:  # due again at once, as after its hold ran out
            await conn.execute(sa.text("UPDATE outbox SET next_attempt_at = created_at"))
        assert await cpo.delivery.run_once() == 1
    (row,) = await towards_hub(net, "cpo", "sessions")
    assert (row["attempts"], row["last_error"]) == (0, HELD + "DE/EMS is PLANNED at the Hub")
    assert wire.to_module("sessions") == []


async def test_a_delivery_to_a_suspended_emsp_is_dropped(cluster):
    net, wire = await network(cluster)
    await report(net, "emsp1", ConnectionStatus.SUSPENDED, seen_by="cpo")
    await net["cpo"].publish("sessions", Session.from_wire(session("S1")))
    await wait_for(lambda: drained(net, "cpo"), timeout=20, what="the delivery dropped")
    assert wire.to_module("sessions") == []
    assert await held(net, "emsp1", "sessions", "NL", "CPO", "S1") is None
    # Connected again, a later change goes out (the dropped one is not revived).
    await report(net, "emsp1", ConnectionStatus.CONNECTED, seen_by="cpo")
    await net["cpo"].publish("sessions", Session.from_wire(session("S2")))
    await wait_for(lambda: held(net, "emsp1", "sessions", "NL", "CPO", "S2"), timeout=20, what="S2 at emsp1")
    assert [c.path.rsplit("/", 1)[1] for c in wire.to_module("sessions")] == ["S2"]


async def test_an_unknown_token_is_authorized_by_open_routing_and_then_cached(cluster):
    net, wire = await network(cluster)
    await net["emsp1"].publish("tokens", Token.from_wire(builders.token("APP-42", whitelist="NEVER")))
    await wait_for(lambda: held(net, "cpo", "tokens", "DE", "EMS", "APP-42", "APP_USER"), timeout=20,
                   what="the token at the CPO")
    async with net["cpo"].engine.begin() as conn:  # the CPO lost its copy
        await conn.execute(sa.delete(objects_table).where(objects_table.c.module == "tokens"))
    decision = await net["cpo"].authorize("APP-42", "APP_USER")
    assert (decision.allowed, decision.source, decision.party) == (True, "realtime", net.hub_at["cpo"].name)
    # No TO: the Hub routed it to the eMSP whose Token it holds.
    assert [(c.method, c.path.rsplit("/tokens", 1)[1], c.frm, c.to) for c in wire.to_module("tokens")
            if c.frm == CPO] == [("POST", "/APP-42/authorize", CPO, None)]
    # The answer's token is cached under the Hub, so the next one goes TO = its eMSP.
    assert (await held(net, "cpo", "tokens", "DE", "EMS", "APP-42", "APP_USER"))["uid"] == "APP-42"
    await net["cpo"].authorize("APP-42", "APP_USER")
    assert [c.to for c in wire.to_module("tokens") if c.frm == CPO] == [None, EMSP1]
