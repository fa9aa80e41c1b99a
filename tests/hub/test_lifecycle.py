"""The whole session lifecycle through a Hub (issue 10 point 7): a CPO and
two eMSPs, each with the Hub as its one partner, over real HTTP, on SQLite
and PostgreSQL. The steps of the direct lifecycle (tests/integration/
test_lifecycle.py, demo/run.py), each routed by the Hub:

1. the CPO's Tariff and Location: Broadcast Pushes, to both eMSPs;
2. the eMSP's Token: a Broadcast Push, to the CPO;
3. the CPO authorizes it in real time (whitelist NEVER) at its eMSP;
4. START_SESSION from the eMSP to the CPO (TO picked from the Location the
   Hub pushed), its result back through the Hub's callback URL;
5. the Session pushed to the token's eMSP only, charging periods PATCHed in;
6. a charging profile set on it, its result back the same way, and the
   ActiveChargingProfile the CPO then pushes routed back to its setter;
7. STOP_SESSION (TO picked from the Session); COMPLETED;
8. the CDR, priced at the CPO, pushed to the eMSP and ACCEPTED by its re-pricing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from evroam.modules.chargingprofiles.owner import ProfileRequest
from evroam.modules.events import ChargingProfileEvent
from evroam.modules.sessions import owner as sessions
from evroam.modules.chargingprofiles.client import push_active_profile
from evroam.ocpi.chargingprofiles import (ActiveChargingProfile, ChargingProfileResponse,
                                          ChargingProfileResponseType, ChargingProfileResultType)
from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandResultType, CommandType
from evroam.ocpi.locations import Location
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.tokens import Token
from evroam.store import objects
from evroam.store.objects import ObjectKey
from tests import builders, charging
from tests.behind import CPO, EMSP1, HUB, Wire, drained, held
from tests.hubnet import CPO1, EMSP1 as EMSP1_ROLES, EMSP2 as EMSP2_ROLES, Net, hub_network
from tests.nodes import wait_for

pytestmark = pytest.mark.timeout(180)

PROFILE = {"charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 16}]}
APP = builders.token("APP-42", "DE", "EMS", whitelist="NEVER")


def calls(wire: Wire, module: str, frm: tuple[str, str]) -> list[tuple[str, str, tuple[str, str] | None]]:
    """(method, path after the module, TO) of what `frm` sent the Hub of `module`."""
    return [(c.method, c.path.split(f"/{module}", 1)[1], c.to) for c in wire.to_module(module) if c.frm == frm]


def on_the_charger(cpo) -> list[str]:
    """The CPO's command and profile hooks, as its charge points would act;
    the ids of the sessions started."""
    started: list[str] = []

    @cpo.on(CommandType.START_SESSION)
    async def start(command, handle):
        async def charge() -> None:
            session = await sessions.start(
                cpo, location_id=command.location_id, evse_uid=command.evse_uid, connector_id="1",
                cdr_token=charging.token("DE", "EMS", command.token.uid) | {"type": command.token.type.value},
                currency="EUR", auth_method="COMMAND", start_date_time=charging.T0)
            started.append(session.id)
            await handle.result(CommandResultType.ACCEPTED)

        asyncio.get_running_loop().create_task(charge())
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

    @cpo.on(CommandType.STOP_SESSION)
    async def stop(command, handle):
        await sessions.stop(cpo, command.session_id, end_date_time=charging.T0 + timedelta(minutes=100))
        await handle.result(CommandResultType.ACCEPTED)
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

    @cpo.on(ChargingProfileEvent.SET)
    async def set_profile(req, handle):
        await handle.result(ChargingProfileResultType.ACCEPTED)
        return ChargingProfileResponse(result=ChargingProfileResponseType.ACCEPTED, timeout=30)

    return started


async def completed(net: Net, uid: str) -> bool:
    t = await net["emsp1"].command(uid)
    return t is not None and t.state == "COMPLETED"


async def test_the_whole_lifecycle_through_a_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp1": EMSP1_ROLES, "emsp2": EMSP2_ROLES})
    cpo, emsp = net["cpo"], net["emsp1"]
    hub_at_emsp = net.hub_at["emsp1"].name
    wire = Wire.on(net.hub)
    started = on_the_charger(cpo)
    told = []

    @emsp.on(ChargingProfileEvent.ACTIVE_PROFILE)
    async def active_profile(session_id, profile, party):
        told.append((session_id, profile.to_wire()))

    # 1. the CPO's Tariff and Location reach both eMSPs, one broadcast each.
    loc = charging.location()
    await cpo.publish("tariffs", Tariff.from_wire(charging.tariff()))
    await cpo.publish("locations", Location.from_wire(loc))
    for at in ("emsp1", "emsp2"):
        await wait_for(lambda a=at: held(net, a, "locations", "NL", "CPO", "LOC1"), timeout=20, what=f"LOC1 at {at}")
        await wait_for(lambda a=at: held(net, a, "tariffs", "NL", "CPO", "T1"), timeout=20, what=f"T1 at {at}")
    assert calls(wire, "tariffs", CPO) == [("PUT", "/NL/CPO/T1", HUB)]
    assert calls(wire, "locations", CPO) == [("PUT", "/NL/CPO/LOC1", HUB)]

    # 2. the eMSP's Token reaches the CPO.
    await emsp.publish("tokens", Token.from_wire(APP))
    await wait_for(lambda: held(net, "cpo", "tokens", "DE", "EMS", "APP-42", "APP_USER"), timeout=20,
                   what="the token at the CPO")
    assert calls(wire, "tokens", EMSP1) == [("PUT", "/DE/EMS/APP-42", HUB)]

    # 3. real-time authorization at the token's eMSP, through the Hub.
    decision = await cpo.authorize("APP-42", "APP_USER", location_id="LOC1")
    assert (decision.allowed, decision.source, decision.party) == (True, "realtime", net.hub_at["cpo"].name)
    assert decision.info.token.uid == "APP-42"
    assert calls(wire, "tokens", CPO) == [("POST", "/APP-42/authorize", EMSP1)]

    # 4. START_SESSION, to the CPO whose Location it names; the result comes back.
    body = {"token": APP, "location_id": "LOC1", "evse_uid": "E1"}
    start_id = await emsp.send_command(hub_at_emsp, CommandType.START_SESSION, body)
    await wait_for(lambda: completed(net, start_id), timeout=20, what="the START_SESSION result")
    t = await emsp.command(start_id)
    assert (t.response, t.result) == ("ACCEPTED", "ACCEPTED")
    assert calls(wire, "commands", EMSP1) == [("POST", "/START_SESSION", CPO)]
    assert [(c.frm, c.to) for c in wire.calls if "/hub/callback/" in c.path] == [(CPO, EMSP1)]

    # 5. the Session reaches the token's eMSP only, periods and all.
    (sid,) = started
    await wait_for(lambda: held(net, "emsp1", "sessions", "NL", "CPO", sid), timeout=20, what="the session")
    for p in (charging.period(0, 10), charging.period(30, 10), charging.period(60, parking_h=0.5)):
        await sessions.update(cpo, sid, [p])

    async def periods(n: int) -> bool:
        doc = await held(net, "emsp1", "sessions", "NL", "CPO", sid)
        return len(doc.get("charging_periods") or ()) == n

    await wait_for(lambda: periods(3), timeout=20, what="3 charging periods at the eMSP")
    assert {to for *_, to in calls(wire, "sessions", CPO)} == {EMSP1}

    # 6. a charging profile set on the session, through the Hub.
    set_id = await emsp.send_profile_request(hub_at_emsp, ProfileRequest.SET, sid, charging_profile=PROFILE)
    await wait_for(lambda: completed(net, set_id), timeout=20, what="the SET result")
    assert ((await emsp.command(set_id)).result) == "ACCEPTED"
    assert calls(wire, "chargingprofiles", EMSP1) == [("PUT", f"/{sid}", CPO)]
    # The CPO tells the setter of the profile that became active: an Open
    # Routing Request, which the Hub routes back to the eMSP.
    active = ActiveChargingProfile.from_wire({"start_date_time": charging.ts(5), "charging_profile": PROFILE})
    assert await push_active_profile(cpo, sid, active) == {net.hub_at["cpo"].name: None}
    await wait_for(lambda: told, timeout=20, what="the ActiveChargingProfile at the eMSP")
    assert told == [(sid, active.to_wire())]
    assert calls(wire, "chargingprofiles", CPO) == [("PUT", f"/{sid}", None)]

    # 7. STOP_SESSION, to the CPO whose Session it names.
    stop_id = await emsp.send_command(hub_at_emsp, CommandType.STOP_SESSION, {"session_id": sid})
    await wait_for(lambda: completed(net, stop_id), timeout=20, what="the STOP_SESSION result")

    async def status(wanted: str) -> bool:
        return (await held(net, "emsp1", "sessions", "NL", "CPO", sid))["status"] == wanted

    await wait_for(lambda: status("COMPLETED"), timeout=20, what="the COMPLETED session at the eMSP")
    assert calls(wire, "commands", EMSP1)[-1] == ("POST", "/STOP_SESSION", CPO)

    # 8. the CDR: priced at the CPO, re-priced and ACCEPTED at the eMSP.
    location = Location.from_wire(loc)
    cdr = await sessions.issue_cdr(cpo, sid, await sessions.connector_tariffs(cpo, location, "E1", "1"), location)
    await wait_for(lambda: held(net, "emsp1", "cdrs", "NL", "CPO", cdr.id), timeout=20, what="the CDR")
    async with emsp.engine.connect() as conn:
        stored = await objects.get(conn, ObjectKey("cdrs", net.hub_at["emsp1"].id, "NL", "CPO", cdr.id))
    assert (stored.status, stored.note) == ("ACCEPTED", "tariffs: as named by the charging periods' tariff_id")
    assert calls(wire, "cdrs", CPO) == [("POST", "/", EMSP1)]
    await wait_for(lambda: drained(net, "cpo"), timeout=20, what="the CPO's outbox to drain")
    # The other eMSP got the broadcasts and nothing of this session.
    assert await held(net, "emsp2", "sessions", "NL", "CPO", sid) is None
    assert await held(net, "emsp2", "cdrs", "NL", "CPO", cdr.id) is None
