"""Commands between a CPO and an eMSP over real HTTP (mod_commands.asciidoc):
the CPO's hooks and handles, the eMSP's tracking by unique response_url,
results, timeouts, and the error rules."""

from __future__ import annotations

import asyncio

import aiohttp
import sqlalchemy as sa

from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandResultType, CommandType
from evroam.ocpi.headers import encode_token
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.modules.events import CommandEvent
from evroam.store.tables import commands as commands_table
from evroam.modules.commands import client as cmd
from tests.builders import cdr_token, session, token
from tests.charging import two_evse_location
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.pair import registered_pair
from tests.partners import party_named


def start(location_id: str = "LOC1", **kw: object) -> dict:
    return {"token": token(), "location_id": location_id, **kw}


async def setup(cluster):
    """A registered pair; the CPO has LOC1 and sessions S1 (the eMSP's) and S2 (another eMSP's)."""
    cpo, emsp, _, party = await registered_pair(cluster)
    await cpo.publish("locations", Location.from_wire(two_evse_location()))
    await cpo.publish("sessions", Session.from_wire(session("S1")))
    await cpo.publish("sessions", Session.from_wire(session("S2", token=cdr_token("FR", "OTH"))))
    return cpo, emsp, party


def accept(timeout: int = 30) -> CommandResponse:
    return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=timeout)


async def state_is(node, uid: str, state: str) -> bool:
    t = await node.command(uid)
    return t is not None and t.state == state


async def cpo_rows(cpo) -> int:
    async with cpo.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(commands_table))).scalar_one()


def commands_url(party) -> str:
    return party.endpoint_url("commands", "RECEIVER")


# --- the lifecycle --------------------------------------------------------------------------------


async def test_start_session_accepted_and_result_accepted(cluster):
    cpo, emsp, party = await setup(cluster)
    seen = {}

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        seen.update(command=command, handle=handle)
        # Reported before the answer: it must still go out after the ACCEPTED.
        seen["task"] = await handle.result(CommandResultType.ACCEPTED)
        return accept()

    results = []

    @emsp.on(CommandEvent.RESULT)
    async def on_result(tracked, partner):
        results.append((tracked.id, tracked.result, partner.name))

    uid = await emsp.send_command(party.name, CommandType.START_SESSION, start(evse_uid="E1"))
    await wait_for(lambda: state_is(emsp, uid, "COMPLETED"), what="the result at the eMSP")
    t = await emsp.command(uid)
    assert (t.direction, t.kind, t.type, t.response, t.status_code, t.timeout, t.result) == (
        "out", "commands", "START_SESSION", "ACCEPTED", 1000, 30, "ACCEPTED")
    assert t.response_url == f"{emsp.config.public_url}/ocpi/2.2.1/sender/commands/START_SESSION/{uid}"
    assert t.to_dict()["request"]["token"]["uid"] == "APP-42" and t.late is False
    assert results == [(uid, "ACCEPTED", party.name)]
    # The CPO's hook got the parsed command and the handle its context.
    handle = seen["handle"]
    assert seen["command"].response_url == t.response_url and seen["command"].evse_uid == "E1"
    assert handle.location.id == "LOC1" and handle.party.name == "emsp"
    assert await seen["task"] is True
    # The CPO recorded what it received and that the result went out.
    mine = await cpo.command(handle.id)
    assert (mine.direction, mine.state, mine.response, mine.result, mine.ref) == (
        "in", "COMPLETED", "ACCEPTED", "ACCEPTED", "LOC1")
    # Both interfaces are published in version details, each on its side.
    at_emsp = {(e["identifier"], e["role"]) for e in party.endpoints}
    assert {("commands", "RECEIVER"), ("chargingprofiles", "RECEIVER")} <= at_emsp
    assert ("commands", "SENDER") not in at_emsp
    at_cpo = {(e["identifier"], e["role"]) for e in (await party_named(cpo, "emsp")).endpoints}
    assert {("commands", "SENDER"), ("chargingprofiles", "SENDER")} <= at_cpo
    assert commands_url(party) == f"{cpo.config.public_url}/ocpi/2.2.1/receiver/commands/"


async def test_command_rejected_by_the_charger(cluster):
    cpo, emsp, party = await setup(cluster)

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(
            handle.result(CommandResultType.EVSE_OCCUPIED)))
        return accept()

    @cpo.on(CommandType.RESERVE_NOW)
    async def reserve(command, handle):
        await handle.result(CommandResultType.REJECTED)
        return accept()

    s = await emsp.send_command(party.name, CommandType.START_SESSION, start())
    r = await emsp.send_command(party.name, "RESERVE_NOW", {
        "token": token(), "expiry_date": "2030-01-01T00:00:00Z", "reservation_id": "R1", "location_id": "LOC1"})
    await wait_for(lambda: state_is(emsp, s, "COMPLETED"), what="EVSE_OCCUPIED")
    await wait_for(lambda: state_is(emsp, r, "COMPLETED"), what="REJECTED")
    assert ((await emsp.command(s)).response, (await emsp.command(s)).result) == ("ACCEPTED", "EVSE_OCCUPIED")
    assert ((await emsp.command(r)).response, (await emsp.command(r)).result) == ("ACCEPTED", "REJECTED")


async def test_command_times_out_and_a_late_result_keeps_timeout(cluster):
    cpo, emsp, party = await setup(cluster)
    handles = []

    @cpo.on(CommandType.UNLOCK_CONNECTOR)
    async def unlock(command, handle):
        handles.append(handle)
        return accept(timeout=1)  # and never reports

    uid = await emsp.send_command(party.name, CommandType.UNLOCK_CONNECTOR,
                                  {"location_id": "LOC1", "evse_uid": "E1", "connector_id": "1"})
    t = await emsp.command(uid)
    assert (t.state, t.timeout) == ("ACCEPTED", 1)
    await wait_for(lambda: state_is(emsp, uid, "TIMEOUT"), timeout=5, what="TIMEOUT at the eMSP")
    # The charger answers after all: recorded, but TIMEOUT stays visible.
    assert await (await handles[0].result(CommandResultType.ACCEPTED)) is True
    t = await emsp.command(uid)
    assert (t.state, t.result, t.late) == ("TIMEOUT", "ACCEPTED", True)
    mine = await cpo.command(handles[0].id)
    assert (mine.state, mine.result) == ("TIMEOUT", "ACCEPTED")


async def test_two_commands_in_flight_each_get_their_own_result(cluster):
    cpo, emsp, party = await setup(cluster)
    handles = {}
    both = asyncio.Event()

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        handles[command.evse_uid] = handle
        if len(handles) == 2:
            both.set()
        return accept()

    a, b = await asyncio.gather(
        emsp.send_command(party.name, CommandType.START_SESSION, start(evse_uid="E1")),
        emsp.send_command(party.name, CommandType.START_SESSION, start(evse_uid="E2", connector_id="1")))
    await asyncio.wait_for(both.wait(), 5)
    assert a != b
    # Results in the opposite order, each to its own response_url.
    await (await handles["E2"].result(CommandResultType.ACCEPTED))
    await (await handles["E1"].result(CommandResultType.EVSE_OCCUPIED))
    await wait_for(lambda: state_is(emsp, a, "COMPLETED"))
    await wait_for(lambda: state_is(emsp, b, "COMPLETED"))
    assert (await emsp.command(a)).result == "EVSE_OCCUPIED"
    assert (await emsp.command(b)).result == "ACCEPTED"


# --- the CPO's rules ---------------------------------------------------------------------------------


async def test_unknown_location_is_2003_with_rejected(cluster):
    cpo, emsp, party = await setup(cluster)

    async def never(command, handle):
        raise AssertionError("the hook must not run for an unknown location")

    for ct in (CommandType.START_SESSION, CommandType.RESERVE_NOW, CommandType.UNLOCK_CONNECTOR):
        cpo.on(ct)(never)
    url = commands_url(party)
    bodies = {
        "START_SESSION": start("NOPE"),
        "RESERVE_NOW": {"token": token(), "expiry_date": "2030-01-01T00:00:00Z", "reservation_id": "R1",
                        "location_id": "NOPE"},
        "UNLOCK_CONNECTOR": {"location_id": "NOPE", "evse_uid": "E1", "connector_id": "1"},
    }
    for ct, body in bodies.items():
        status, env, _ = await call("POST", f"{url}/{ct}", party.token_out,
                                    {**body, "response_url": "http://127.0.0.1:1/r/1"})
        assert (status, env["status_code"], env["data"]["result"], env["data"]["timeout"]) == (
            200, 2003, "REJECTED", 0), ct
        assert "NOPE" in env["status_message"]
    # Through the eMSP's client: the REJECTED is kept with the 2003.
    uid = await emsp.send_command(party.name, CommandType.START_SESSION, start("NOPE"))
    t = await emsp.command(uid)
    assert (t.state, t.response, t.status_code) == ("REJECTED", "REJECTED", 2003)
    assert "2003" in t.message
    # A known location with an unknown EVSE or connector: REJECTED, no 2003.
    cpo.on(CommandType.START_SESSION)(lambda c, h: _accepting())
    for body in (start(evse_uid="E9"), start(evse_uid="E1", connector_id="7")):
        uid = await emsp.send_command(party.name, CommandType.START_SESSION, body)
        t = await emsp.command(uid)
        assert (t.state, t.status_code) == ("REJECTED", 1000)


async def _accepting() -> CommandResponse:
    return accept()


async def test_stop_session_unknown_foreign_and_own(cluster):
    cpo, emsp, party = await setup(cluster)
    sessions = []

    @cpo.on(CommandType.STOP_SESSION)
    async def stop(command, handle):
        sessions.append(handle.session.id)
        return accept()

    unknown = await emsp.send_command(party.name, CommandType.STOP_SESSION, {"session_id": "S404"})
    foreign = await emsp.send_command(party.name, CommandType.STOP_SESSION, {"session_id": "S2"})
    own = await emsp.send_command(party.name, CommandType.STOP_SESSION, {"session_id": "s1"})  # CiString
    assert [(await emsp.command(u)).state for u in (unknown, foreign, own)] == [
        "UNKNOWN_SESSION", "REJECTED", "ACCEPTED"]
    assert sessions == ["S1"]


async def test_no_hook_is_not_supported_and_tokens_are_not_checked(cluster):
    cpo, emsp, party = await setup(cluster)
    # (An unknown location is 2003 even without a hook: test_conformance.py.)
    for ct, body in ((CommandType.START_SESSION, start()), (CommandType.CANCEL_RESERVATION, {"reservation_id": "R1"})):
        uid = await emsp.send_command(party.name, ct, body)
        t = await emsp.command(uid)
        assert (t.state, t.response, t.status_code) == ("NOT_SUPPORTED", "NOT_SUPPORTED", 1000)
    cpo.on(CommandType.START_SESSION)(lambda c, h: _accepting())
    # A token the CPO never saw (never pushed, never authorized here): accepted as is.
    uid = await emsp.send_command(party.name, CommandType.START_SESSION, start())
    assert (await emsp.command(uid)).state == "ACCEPTED"
    # Another eMSP's token: an eMSP may use only its own.
    body = {"token": token(cc="FR", pid="OTH"), "location_id": "LOC1"}
    uid = await emsp.send_command(party.name, CommandType.START_SESSION, body)
    assert (await emsp.command(uid)).state == "REJECTED"


async def test_result_only_after_accepted_and_failing_hook(cluster):
    cpo, emsp, party = await setup(cluster)
    tasks = []

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        tasks.append(await handle.result(CommandResultType.ACCEPTED))
        return CommandResponse(result=CommandResponseType.REJECTED, timeout=0)

    uid = await emsp.send_command(party.name, CommandType.START_SESSION, start())
    assert await tasks[0] is False  # dropped: the answer was REJECTED
    t = await emsp.command(uid)
    assert (t.state, t.result) == ("REJECTED", None)

    @cpo.on(CommandType.STOP_SESSION)
    async def broken(command, handle):
        raise RuntimeError("charger backend down")

    status, env, _ = await call("POST", f"{commands_url(party)}/STOP_SESSION", party.token_out,
                                {"response_url": "http://127.0.0.1:1/r/2", "session_id": "S1"})
    assert (status, env["status_code"], env["data"]["result"]) == (200, 3000, "REJECTED")


async def test_bad_requests_write_nothing(cluster):
    cpo, emsp, party = await setup(cluster)
    cpo.on(CommandType.START_SESSION)(lambda c, h: _accepting())
    url = commands_url(party)
    tok = party.token_out
    before = await cpo_rows(cpo)
    ru = {"response_url": "http://127.0.0.1:1/r/3"}
    # connector_id without evse_uid: the model refuses it, naming the field.
    status, env, _ = await call("POST", f"{url}/START_SESSION", tok, {**start(connector_id="1"), **ru})
    assert (status, env["status_code"]) == (200, 2001) and "evse_uid" in env["status_message"]
    # The EVSE demands a connector (START_SESSION_CONNECTOR_REQUIRED).
    status, env, _ = await call("POST", f"{url}/START_SESSION", tok, {**start(evse_uid="E2"), **ru})
    assert (status, env["status_code"]) == (200, 2001) and "connector_id" in env["status_message"]
    status, env, _ = await call("POST", f"{url}/START_SESSION", tok, start())  # no response_url
    assert (status, env["status_code"]) == (200, 2001) and "response_url" in env["status_message"]
    status, env, _ = await call("POST", f"{url}/START_SESSION", tok, b'{"token": ')
    assert (status, env["status_code"]) == (400, 2000)
    status, env, _ = await call("POST", f"{url}/start_session", tok, {**start(), **ru})  # enums are case-sensitive
    assert status == 404 and env["status_code"] == 2000
    status, env, _ = await call("POST", f"{url}/START_SESSION", "not-a-token", {**start(), **ru})
    assert (status, env["status_code"]) == (401, 2000)
    status, env, _ = await call("GET", f"{url}/START_SESSION", tok)
    assert status == 405 and env["status_code"] == 2000
    assert await cpo_rows(cpo) == before
    # The eMSP's client refuses the same mistakes before sending anything.
    for body in (start(connector_id="1"), {**start(), **ru}):
        try:
            await emsp.send_command(party.name, CommandType.START_SESSION, body)
        except cmd.InvalidRequest:
            pass
        else:
            raise AssertionError(f"sent {body}")


# --- the eMSP's Sender interface ------------------------------------------------------------------------


async def test_result_for_unknown_or_foreign_id_is_404(cluster):
    cpo, emsp, party = await setup(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")
    base = emsp_at_cpo.endpoint_url("commands", "SENDER")
    tok = emsp_at_cpo.token_out
    status, env, _ = await call("POST", f"{base}/START_SESSION/0123456789abcdef", tok, {"result": "ACCEPTED"})
    assert (status, env["status_code"]) == (404, 2000)

    cpo.on(CommandType.START_SESSION)(lambda c, h: _accepting())
    uid = await emsp.send_command(party.name, CommandType.START_SESSION, start())
    # The right id under another command type: not ours either.
    status, env, _ = await call("POST", f"{base}/STOP_SESSION/{uid}", tok, {"result": "ACCEPTED"})
    assert status == 404
    # Invalid result body: 2001 naming the field; nothing recorded.
    status, env, _ = await call("POST", f"{base}/START_SESSION/{uid}", tok, {"result": "accepted"})
    assert (status, env["status_code"]) == (200, 2001) and "result" in env["status_message"]
    status, env, _ = await call("POST", f"{base}/START_SESSION/{uid}", tok, b"{")
    assert (status, env["status_code"]) == (400, 2000)
    assert (await emsp.command(uid)).result is None
    # A valid one: 1000 without data.
    status, env, _ = await call("POST", f"{base}/START_SESSION/{uid}", tok, {"result": "FAILED"})
    assert (status, env["status_code"]) == (200, 1000) and "data" not in env
    assert (await emsp.command(uid)).result == "FAILED"
    # Only the partner we asked may answer: another registered CPO that learns
    # the id gets 404, as if it did not exist.
    other = await cluster.node("cpo2", [("CPO", "BE", "CP2")])
    token_a, versions_url = await other.handshake.invite("emsp")
    await emsp.handshake.register(versions_url, token_a)
    emsp_at_other = await party_named(other, "emsp")
    status, env, _ = await call("POST", f"{base}/START_SESSION/{uid}", emsp_at_other.token_out,
                                {"result": "ACCEPTED"})
    assert (status, env["status_code"]) == (404, 2000)
    assert (await emsp.command(uid)).result == "FAILED"
    # A CPO that cannot be reached: ERROR, with the reason.
    cpo2_name = next(p.name for p in await _parties(emsp) if p.name != party.name)
    await other.stop()
    cluster.nodes.remove(other)
    uid = await emsp.send_command(cpo2_name, CommandType.START_SESSION, start())
    t = await emsp.command(uid)
    assert (t.state, t.response) == ("ERROR", None) and "failed" in t.message


async def _parties(node):
    from evroam.store import parties as repo

    async with node.engine.connect() as conn:
        return await repo.list_all(conn)


async def test_results_out_of_the_ordinary(cluster):
    """A result before the answer (some CPOs do that), and a second result on
    the same response_url (CANCELED_RESERVATION, long after the first)."""
    cpo, emsp, party = await setup(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        status, body, _ = await call("POST", command.response_url, emsp_at_cpo.token_out, {"result": "ACCEPTED"})
        assert (status, body["status_code"]) == (200, 1000)
        return accept()

    uid = await emsp.send_command(party.name, CommandType.START_SESSION, start())
    t = await emsp.command(uid)
    assert (t.state, t.response, t.result) == ("COMPLETED", "ACCEPTED", "ACCEPTED")

    ids = []

    @cpo.on(CommandType.RESERVE_NOW)
    async def reserve(command, handle):
        ids.append(handle.id)
        await handle.result(CommandResultType.ACCEPTED)
        return accept()

    uid = await emsp.send_command(party.name, CommandType.RESERVE_NOW, {
        "token": token(), "expiry_date": "2030-01-01T00:00:00Z", "reservation_id": "R7", "location_id": "LOC1"})
    await wait_for(lambda: state_is(emsp, uid, "COMPLETED"))
    # Later, a handle from the record (e.g. after a restart) cancels it.
    handle = await cpo.callbacks.handle(ids[0])
    assert await (await handle.result(CommandResultType.CANCELED_RESERVATION)) is True
    t = await emsp.command(uid)
    assert (t.state, t.result) == ("COMPLETED", "CANCELED_RESERVATION")


# --- admin ------------------------------------------------------------------------------------------------


async def test_admin_routes_send_and_show(cluster):
    admin_token = "a" * 24
    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO")])
    emsp = await cluster.node("emsp", [("EMSP", "DE", "EMS")], admin_token=admin_token)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(versions_url, token_a)
    await cpo.publish("locations", Location.from_wire(two_evse_location()))
    await cpo.publish("sessions", Session.from_wire(session("S1")))

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        await handle.result(CommandResultType.ACCEPTED)
        return accept()

    admin = f"{emsp.config.public_url}/admin"
    h = {"Authorization": f"Bearer {admin_token}"}
    async with aiohttp.ClientSession(headers=h) as s:
        async with s.post(f"{admin}/commands/{party.name}/START_SESSION", json=start()) as r:
            body = await r.json()
            assert r.status == 201, body
        uid = body["data"]["id"]
        assert body["data"]["response"] == "ACCEPTED"
        await wait_for(lambda: state_is(emsp, uid, "COMPLETED"))
        async with s.get(f"{admin}/commands/{uid}") as r:
            assert r.status == 200
            data = (await r.json())["data"]
        assert (data["state"], data["result"], data["type"]) == ("COMPLETED", "ACCEPTED", "START_SESSION")
        async with s.post(f"{admin}/commands/{party.name}/START_SESSION", json=start(connector_id="1")) as r:
            assert r.status == 400 and "evse_uid" in (await r.json())["status_message"]
        async with s.post(f"{admin}/commands/nobody/START_SESSION", json=start()) as r:
            assert r.status == 404
        async with s.get(f"{admin}/commands/does-not-exist") as r:
            assert r.status == 404
        async with s.post(f"{admin}/chargingprofiles/{party.name}/CLEAR", json={"session_id": "S1"}) as r:
            body = await r.json()
            assert r.status == 201 and body["data"]["state"] == "NOT_SUPPORTED", body
        async with s.get(f"{admin}/chargingprofiles/{body['data']['id']}") as r:
            assert (await r.json())["data"]["kind"] == "chargingprofiles"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{admin}/commands/{uid}", headers={"Authorization": encode_token("x")}) as r:
            assert r.status == 401
