"""ChargingProfiles between a CPO and an eMSP over real HTTP
(mod_charging_profiles.asciidoc): GET/PUT/DELETE at the CPO with hooks and
handles, results and ActiveChargingProfile updates at the eMSP."""

from __future__ import annotations

import sqlalchemy as sa

from evroam.ocpi.chargingprofiles import (
    ActiveChargingProfile,
    ChargingProfileResponse,
    ChargingProfileResponseType,
    ChargingProfileResultType,
)
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.modules.chargingprofiles.sender import active_profile
from evroam.modules.chargingprofiles.receiver import ChargingProfileRequest, ProfileRequest
from evroam.modules.events import ChargingProfileEvent
from evroam.store.tables import commands as commands_table
from evroam.sync.tracker import ResultHandle
from evroam.modules.chargingprofiles import client as cmd
from tests.builders import cdr_token, session
from tests.charging import two_evse_location
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.pair import registered_pair
from tests.partners import party_named

PROFILE = {"charging_rate_unit": "A", "min_charging_rate": 6,
           "charging_profile_period": [{"start_period": 0, "limit": 16}, {"start_period": 1800, "limit": 8.5}]}
ACTIVE = {"start_date_time": "2026-01-01T10:00:00Z", "charging_profile": PROFILE}


async def setup(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    await cpo.publish("locations", Location.from_wire(two_evse_location()))
    for sid, cc, pid in (("S1", "DE", "EMS"), ("S2", "FR", "OTH"), ("S3", "DE", "EMS")):
        await cpo.publish("sessions", Session.from_wire(session(sid, token=cdr_token(cc, pid))))
    return cpo, emsp, party


def accept(timeout: int = 30) -> ChargingProfileResponse:
    return ChargingProfileResponse(result=ChargingProfileResponseType.ACCEPTED, timeout=timeout)


async def state_is(node, uid: str, state: str) -> bool:
    t = await node.command(uid)
    return t is not None and t.state == state


async def rows(node) -> int:
    async with node.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(commands_table))).scalar_one()


async def test_set_profile_result_and_active_profile_updates(cluster):
    cpo, emsp, party = await setup(cluster)
    seen: list[tuple[ChargingProfileRequest, ResultHandle]] = []

    @cpo.on(ChargingProfileEvent.SET)
    async def set_profile(req, handle):
        seen.append((req, handle))
        await handle.result(ChargingProfileResultType.ACCEPTED)
        return accept()

    results, updates = [], []

    @emsp.on(ChargingProfileEvent.RESULT)
    async def on_result(tracked, partner):
        results.append((tracked.type, tracked.result))

    @emsp.on(ChargingProfileEvent.ACTIVE_PROFILE)
    async def on_active(session_id, profile, partner):
        updates.append((session_id, profile.charging_profile.charging_profile_period[0].limit, partner.name))

    uid = await emsp.send_profile_request(party.name, "SET", "S1", charging_profile=PROFILE)
    await wait_for(lambda: state_is(emsp, uid, "COMPLETED"), what="ChargingProfileResult at the eMSP")
    t = await emsp.command(uid)
    assert (t.kind, t.type, t.response, t.status_code, t.result, t.ref) == (
        "chargingprofiles", "SET", "ACCEPTED", 1000, "ACCEPTED", "S1")
    assert t.response_url == f"{emsp.config.public_url}/ocpi/2.2.1/sender/chargingprofiles/SET/{uid}"
    assert t.to_dict()["result_data"] == {"result": "ACCEPTED"}
    assert results == [("SET", "ACCEPTED")]
    req, handle = seen[0]
    assert (req.type, req.session_id, req.response_url) == (ProfileRequest.SET, "S1", t.response_url)
    assert req.charging_profile.charging_profile_period[1].limit == 8.5
    assert handle.session.id == "S1" and handle.party.name == "emsp"
    mine = await cpo.command(handle.id)
    assert (mine.direction, mine.state, mine.result) == ("in", "COMPLETED", "ACCEPTED")

    # The CPO pushes ActiveChargingProfile changes to those who set a profile
    # on that session, and only to them.
    active = ActiveChargingProfile.from_wire(ACTIVE)
    assert await cmd.push_active_profile(cpo, "S1", active) == {"emsp": None}
    assert await cmd.push_active_profile(cpo, "S3", active) == {}
    assert updates == [("S1", 16, party.name)]
    stored = await active_profile(emsp.engine, party.id, "S1")
    assert stored == active


async def test_get_active_profile_and_query_rules(cluster):
    cpo, emsp, party = await setup(cluster)
    requests = []

    @cpo.on(ChargingProfileEvent.GET_ACTIVE)
    async def get_active(req, handle):
        requests.append(req)
        await handle.result(ChargingProfileResultType.ACCEPTED, profile=ActiveChargingProfile.from_wire(ACTIVE))
        return accept()

    uid = await emsp.send_profile_request(party.name, ProfileRequest.GET_ACTIVE, "S1", duration=900)
    await wait_for(lambda: state_is(emsp, uid, "COMPLETED"))
    t = await emsp.command(uid)
    assert t.to_dict()["result_data"] == {"result": "ACCEPTED", "profile": {
        "start_date_time": "2026-01-01T10:00:00Z", "charging_profile": PROFILE}}
    assert (requests[0].duration, requests[0].session_id) == (900, "S1")

    url = f"{party.endpoint_url('chargingprofiles', 'RECEIVER')}/S1"
    tok = party.token_out
    before = await rows(cpo)
    for query, field in (("?response_url=http://127.0.0.1:1/r", "duration"), ("?duration=900", "response_url"),
                         ("?duration=soon&response_url=http://127.0.0.1:1/r", "duration"),
                         ("?duration=-5&response_url=http://127.0.0.1:1/r", "duration"),
                         ("?duration=9&response_url=" + "x" * 300, "response_url")):
        status, env, _ = await call("GET", url + query, tok)
        assert (status, env["status_code"]) == (200, 2001), query
        assert field in env["status_message"]
    status, env, _ = await call("GET", url + "?duration=9&response_url=http://127.0.0.1:1/r", "nope")
    assert status == 401
    assert await rows(cpo) == before


async def test_clear_profile_rejected_by_evse_and_timeout(cluster):
    cpo, emsp, party = await setup(cluster)
    first = []

    @cpo.on(ChargingProfileEvent.CLEAR)
    async def clear(req, handle):
        if not first:
            first.append(handle)
            await handle.result(ChargingProfileResultType.UNKNOWN)
            return accept()
        return accept(timeout=1)  # and never reports

    a = await emsp.send_profile_request(party.name, "CLEAR", "S1")
    await wait_for(lambda: state_is(emsp, a, "COMPLETED"))
    assert (await emsp.command(a)).to_dict()["result_data"] == {"result": "UNKNOWN"}
    b = await emsp.send_profile_request(party.name, "CLEAR", "S1")
    await wait_for(lambda: state_is(emsp, b, "TIMEOUT"), timeout=5, what="TIMEOUT")
    # DELETE needs its response_url.
    status, env, _ = await call("DELETE", f"{party.endpoint_url('chargingprofiles', 'RECEIVER')}/S1",
                                party.token_out)
    assert (status, env["status_code"]) == (200, 2001) and "response_url" in env["status_message"]
    # A ClearProfileResult carries no profile.
    try:
        await first[0].result(ChargingProfileResultType.ACCEPTED, profile=ActiveChargingProfile.from_wire(ACTIVE))
    except ValueError:
        pass
    else:
        raise AssertionError("a profile on a ClearProfileResult")


async def test_no_hook_unknown_and_foreign_sessions(cluster):
    cpo, emsp, party = await setup(cluster)
    url = party.endpoint_url("chargingprofiles", "RECEIVER")
    tok = party.token_out
    ru = "http://127.0.0.1:1/r/1"
    calls = {
        "GET": lambda sid: call("GET", f"{url}/{sid}?duration=60&response_url={ru}", tok),
        "PUT": lambda sid: call("PUT", f"{url}/{sid}", tok, {"charging_profile": PROFILE, "response_url": ru}),
        "DELETE": lambda sid: call("DELETE", f"{url}/{sid}?response_url={ru}", tok),
    }
    for do in calls.values():
        status, env, _ = await do("S1")
        assert (status, env["status_code"], env["data"]) == (200, 1000, {"result": "NOT_SUPPORTED", "timeout": 0})
    for event in (ChargingProfileEvent.GET_ACTIVE, ChargingProfileEvent.SET, ChargingProfileEvent.CLEAR):
        cpo.on(event)(_accepting)
    for method, do in calls.items():
        status, env, _ = await do("S404")
        assert (env["status_code"], env["data"]["result"]) == (1000, "UNKNOWN_SESSION"), method
        status, env, _ = await do("S2")  # another eMSP's session
        assert (env["status_code"], env["data"]["result"]) == (1000, "REJECTED"), method
        status, env, _ = await do("s1")
        assert (env["status_code"], env["data"]["result"]) == (1000, "ACCEPTED"), method
    # Through the client, the same answers.
    uid = await emsp.send_profile_request(party.name, "SET", "S404", charging_profile=PROFILE)
    assert (await emsp.command(uid)).state == "UNKNOWN_SESSION"
    # Invalid profile: 2001 naming the field, nothing recorded.
    before = await rows(cpo)
    bad = {"charging_profile": {**PROFILE, "charging_profile_period": [{"start_period": 0, "limit": 7.25}]},
           "response_url": ru}
    status, env, _ = await call("PUT", f"{url}/S1", tok, bad)
    assert (status, env["status_code"]) == (200, 2001) and "limit" in env["status_message"]
    status, env, _ = await call("PUT", f"{url}/S1", tok, b"[")
    assert (status, env["status_code"]) == (400, 2000)
    assert await rows(cpo) == before
    try:
        await emsp.send_profile_request(party.name, "SET", "S1", charging_profile=bad["charging_profile"])
    except cmd.InvalidRequest as exc:
        assert "limit" in str(exc)
    else:
        raise AssertionError("an invalid profile was sent")

    # An SCSP does not own the token, but may have a contract: the hook decides.
    scsp = await cluster.node("scsp", [("SCSP", "NL", "SCS")])
    token_a, versions_url = await cpo.handshake.invite("scsp")
    cpo_at_scsp = await scsp.handshake.register(versions_url, token_a)
    status, env, _ = await call("DELETE", f"{url}/S2?response_url={ru}", cpo_at_scsp.token_out)
    assert env["data"]["result"] == "ACCEPTED"


async def _accepting(req, handle) -> ChargingProfileResponse:
    return accept()


async def test_sender_interface_rules(cluster):
    cpo, emsp, party = await setup(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")
    base = emsp_at_cpo.endpoint_url("chargingprofiles", "SENDER")
    tok = emsp_at_cpo.token_out
    status, env, _ = await call("POST", f"{base}/SET/0123456789abcdef", tok, {"result": "ACCEPTED"})
    assert (status, env["status_code"]) == (404, 2000)
    cpo.on(ChargingProfileEvent.SET)(_accepting)
    uid = await emsp.send_profile_request(party.name, "SET", "S1", charging_profile=PROFILE)
    status, env, _ = await call("POST", f"{base}/CLEAR/{uid}", tok, {"result": "ACCEPTED"})
    assert status == 404  # right id, wrong request
    status, env, _ = await call("POST", f"{base}/SET/{uid}", tok, {"result": "DONE"})
    assert (status, env["status_code"]) == (200, 2001) and "result" in env["status_message"]
    status, env, _ = await call("POST", f"{base}/SET/{uid}", tok, {"result": "REJECTED"})
    assert (status, env["status_code"]) == (200, 1000) and "data" not in env
    assert ((await emsp.command(uid)).state, (await emsp.command(uid)).result) == ("COMPLETED", "REJECTED")
    # PUT of an ActiveChargingProfile: 201 then 200, never data; invalid: 2001.
    status, env, _ = await call("PUT", f"{base}/S1", tok, ACTIVE)
    assert (status, env["status_code"]) == (201, 1000) and "data" not in env
    status, env, _ = await call("PUT", f"{base}/S1", tok, {**ACTIVE, "start_date_time": "2026-01-01T11:00:00Z"})
    assert (status, env["status_code"]) == (200, 1000) and "data" not in env
    status, env, _ = await call("PUT", f"{base}/S1", tok, {"start_date_time": "2026-01-01T11:00:00Z"})
    assert (status, env["status_code"]) == (200, 2001) and "charging_profile" in env["status_message"]
    status, env, _ = await call("PUT", f"{base}/{'x' * 40}", tok, ACTIVE)
    assert (status, env["status_code"]) == (200, 2001) and "session_id" in env["status_message"]
    status, env, _ = await call("GET", f"{base}/S1", tok)
    assert status == 405
    assert (await active_profile(emsp.engine, party.id, "S1")).start_date_time.hour == 11
