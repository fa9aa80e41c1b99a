"""The independent partner as eMSP, evroam as CPO: our pushes reaching the
partner (its Session PATCH fault included), token pull and push, real-time
authorization, and commands the partner sends us."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandResultType, CommandType
from evroam.ocpi.locations import Location
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import format_datetime, utcnow
from evroam.store import calllog
from evroam.modules.locations import owner as our_locations
from evroam.modules.sessions import owner as ops
from tests.interop.wire import (EVROAM_CPO, PARTNER_EMSP, cdr_token, delivered, location, partner_registers, period,
                                received, tariff, token)
from tests.nodes import wait_for

pytestmark = pytest.mark.timeout(300)  # the first test may build the interop venv

CC, PID = PARTNER_EMSP[1], PARTNER_EMSP[2]
THEIR_TOKEN = cdr_token(CC, PID, "RFID-1")


@pytest.fixture
async def pair(evroam, partner):
    node = await evroam.node("cpo", EVROAM_CPO)
    p = await partner(*PARTNER_EMSP)
    party, _ = await partner_registers(node, p)
    return node, p, party


async def held(p, module: str) -> dict:
    return (await p.state())["objects"][module]


async def outbound(node, method: str, part: str) -> list[dict]:
    await node.call_log.flush()
    return [r for r in await calllog.recent(node.engine, limit=100)
            if r["direction"] == "out" and r["method"] == method and part in r["url"]]


# --- our pushes ------------------------------------------------------------------------------------


async def test_location_and_evse_status_reach_the_partner(pair):
    node, p, party = pair
    await node.publish("locations", Location.from_wire(location("NL", "EVC", "LOC1")))
    await wait_for(lambda: delivered(node), what="the Location PUT")
    assert (await held(p, "locations"))["loc1"]["evses"][0]["status"] == "AVAILABLE"
    await our_locations.set_evse_status(node, "LOC1", "E1", "CHARGING")
    await wait_for(lambda: delivered(node), what="the EVSE PATCH")
    assert (await held(p, "locations"))["loc1"]["evses"][0]["status"] == "CHARGING"
    [patch] = await outbound(node, "PATCH", "/locations/")
    assert patch["url"].endswith("/locations/NL/EVC/LOC1/E1") and patch["http_status"] == 200


async def test_tariff_reaches_the_partner(pair):
    node, p, party = pair
    await node.publish("tariffs", Tariff.from_wire(tariff("NL", "EVC", "T1")))
    await wait_for(lambda: delivered(node), what="the Tariff PUT")
    assert (await held(p, "tariffs"))["t1"]["currency"] == "EUR"


async def _session_with_cdr_setup(node) -> None:
    await node.publish("tariffs", Tariff.from_wire(tariff("NL", "EVC", "T1")))
    await node.publish("locations", Location.from_wire(location("NL", "EVC", "LOC1", tariff_ids=("T1",))))


async def test_session_patch_replaces_periods_at_the_partner(pair):
    """Partner fault: its Session PATCH replaces charging_periods instead of
    appending them. evroam sends what the spec says (only the new period),
    and keeps the whole session on its Sender interface for the partner to pull."""
    node, p, party = pair
    start = utcnow().replace(microsecond=0) - timedelta(hours=1)  # the partner cuts timestamps to seconds
    await ops.start(node, session_id="S1", location_id="LOC1", evse_uid="E1", connector_id="1",
                    cdr_token=THEIR_TOKEN, currency="EUR", start_date_time=start)
    await wait_for(lambda: delivered(node), what="the Session PUT")
    first, second = period(format_datetime(start), 2), period(format_datetime(start + timedelta(minutes=30)), 3)
    await ops.update(node, "S1", [first])
    await wait_for(lambda: delivered(node), what="the first PATCH")  # two pending PATCHes would fold into a PUT
    await ops.update(node, "S1", [second])
    await wait_for(lambda: delivered(node), what="the second PATCH")
    patches = await outbound(node, "PATCH", "/sessions/")
    assert [json.loads(r["request_body"])["charging_periods"] for r in patches] == [
        [{"start_date_time": second["start_date_time"], "dimensions": [{"type": "ENERGY", "volume": 3.0}]}],
        [{"start_date_time": first["start_date_time"], "dimensions": [{"type": "ENERGY", "volume": 2.0}]}]]
    at_partner = (await held(p, "sessions"))["s1"]
    assert [x["start_date_time"] for x in at_partner["charging_periods"]] == [second["start_date_time"]]
    assert at_partner["kwh"] == 5.0  # kwh, sent whole, is right
    ours = await ops.get_session(node, "S1")
    assert len(ours.charging_periods) == 2


async def test_cdr_reaches_the_partner(pair):
    node, p, party = pair
    await _session_with_cdr_setup(node)
    start = utcnow() - timedelta(hours=1)
    await ops.start(node, session_id="S2", location_id="LOC1", evse_uid="E1", connector_id="1",
                    cdr_token=THEIR_TOKEN, currency="EUR", start_date_time=start)
    await ops.stop(node, "S2", end_date_time=start + timedelta(minutes=40),
                   charging_periods=[period(format_datetime(start), 10)])
    session = await ops.get_session(node, "S2")
    loc = await ops.our_location(node, session)
    [t] = await ops.connector_tariffs(node, loc, "E1", "1")
    cdr = await ops.issue_cdr(node, session, t, loc)
    await wait_for(lambda: delivered(node), what="the CDR POST")
    got = (await held(p, "cdrs"))[cdr.id.lower()]
    # The partner's model drops cdr_location.evse_uid (it has no such field); the rest arrives.
    assert got["total_cost"]["excl_vat"] == 3.0 and "evse_uid" not in got["cdr_location"]
    [post] = await outbound(node, "POST", "/cdrs")
    assert post["http_status"] == 200 and post["ocpi_status"] == 1000


# --- tokens ----------------------------------------------------------------------------------------


async def test_pull_of_tokens(pair):
    node, p, party = pair
    await p.seed("tokens", [token(CC, PID, f"RFID-{i}") for i in range(3)])
    result = await node.pull(party.name, "tokens", full=True)
    assert (result.error, result.stored, result.invalid) == (None, 3, [])
    t = await received(node, party, "tokens", CC, PID, "RFID-2", "RFID")
    assert (t["uid"], t["whitelist"], t["valid"]) == ("rfid-2", "NEVER", True)


async def test_partner_pushes_a_token(pair):
    node, p, party = pair
    await p.seed("tokens", [token(CC, PID, "RFID-9", whitelist="ALWAYS")])
    reply = await p.push("tokens", "rfid-9")
    assert (reply["status_code"], reply["response"]["status_code"]) in ((200, 1000), (201, 1000))
    assert (await received(node, party, "tokens", CC, PID, "RFID-9", "RFID"))["whitelist"] == "ALWAYS"


# --- real-time authorization -----------------------------------------------------------------------


@pytest.fixture
async def tokens(pair):
    """The partner's tokens, whitelist NEVER (always asked in real time), known to evroam by a pull."""
    node, p, party = pair
    await p.seed("tokens", [token(CC, PID, "VALID-1"), token(CC, PID, "BLOCKED-1", valid=False)])
    assert (await node.pull(party.name, "tokens", full=True)).stored == 2
    return pair


async def test_authorize_a_valid_token(tokens):
    node, p, party = tokens
    d = await node.authorize("VALID-1", "RFID", location_id="LOC1")
    assert (d.allowed, d.source, d.allowed_type.value if d.allowed_type else None) == (True, "realtime", "ALLOWED")
    [asked] = (await p.state())["authorize_calls"]
    assert asked["token_uid"] == "valid-1" and asked["location_reference"]["location_id"] == "loc1"


async def test_authorize_a_blocked_token(tokens):
    node, p, party = tokens
    d = await node.authorize("BLOCKED-1", "RFID")
    assert (d.allowed, d.source, d.allowed_type.value if d.allowed_type else None) == (False, "realtime", "BLOCKED")


async def test_authorize_an_unknown_token(tokens):
    """The partner answers 404 {"detail": …} (no envelope, no 2004): evroam
    does not allow the token, and says it asked in real time."""
    node, p, party = tokens
    d = await node.authorize("NOBODY", "RFID")
    assert (d.allowed, d.source, d.info) == (False, "realtime", None)
    assert d.reason == "unknown token (asked 1 partner(s) in real time)"
    assert (await p.state())["authorize_calls"] == []


async def test_authorize_a_cached_token_the_partner_no_longer_knows(pair):
    """mod_tokens: "When the eMSP does not know the Token, the eMSP SHALL
    respond with an HTTP status code: 404". The partner does, with a body
    that is no OCPI envelope; that is still the eMSP saying "unknown", not
    silence, so ALLOWED_OFFLINE must not fall back to the cached copy."""
    node, p, party = pair
    await p.seed("tokens", [token(CC, PID, "OFF-1", whitelist="ALLOWED_OFFLINE")])
    assert (await node.pull(party.name, "tokens", full=True)).stored == 1
    await p.control("DELETE", "objects/tokens/off-1|RFID")  # the eMSP withdrew it
    d = await node.authorize("OFF-1", "RFID")
    assert (d.allowed, d.source, d.info) == (False, "realtime", None)
    assert d.reason == "the eMSP no longer knows this token (404/2004)"
    [ask] = await outbound(node, "POST", "/authorize")
    assert ask["http_status"] == 404 and ask["ocpi_status"] is None


async def test_authorize_sends_type_the_partner_reads_token_type(pair):
    """Partner fault: it reads the query parameter `token_type`, not the spec's
    `type`, so it looks an APP_USER token up as RFID and does not find it.
    evroam sends `type` (the spec) and does not allow the token."""
    node, p, party = pair
    await p.seed("tokens", [token(CC, PID, "APP-1", type_="APP_USER")])
    assert (await node.pull(party.name, "tokens", full=True)).stored == 1
    d = await node.authorize("APP-1", "APP_USER")
    assert (d.allowed, d.info) == (False, None)
    [ask] = await outbound(node, "POST", "/authorize")
    assert ask["url"].endswith("/APP-1/authorize?type=APP_USER") and ask["http_status"] == 404


# --- commands the partner sends us -----------------------------------------------------------------


async def test_partner_starts_a_session_and_gets_the_result(pair):
    node, p, party = pair
    await node.publish("locations", Location.from_wire(location("NL", "EVC", "LOC1")))
    seen = []

    @node.on(CommandType.START_SESSION)
    async def start(command, handle):
        seen.append(command)
        await handle.result(CommandResultType.ACCEPTED)
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

    reply = await p.control("POST", "command/START_SESSION",
                            {"token": token(CC, PID, "RFID-1"), "location_id": "LOC1", "evse_uid": "E1"})
    # Our answer is one CommandResponse object, never a list.
    assert (reply["http_status"], reply["body"]["status_code"]) == (200, 1000)
    assert reply["body"]["data"] == {"result": "ACCEPTED", "timeout": 30}
    [cmd] = seen
    # The partner lower-cases the ids it sends; evroam looked the location up case-insensitively.
    assert (cmd.location_id, cmd.token.uid) == ("loc1", "rfid-1")

    async def result_arrived() -> bool:
        return reply["uid"] in (await p.state())["command_results"]

    await wait_for(result_arrived, what="the CommandResult at the partner")
    assert (await p.state())["command_results"][reply["uid"]]["result"] == "ACCEPTED"


async def test_partner_stops_an_unknown_session(pair):
    node, p, party = pair
    reply = await p.control("POST", "command/STOP_SESSION", {"session_id": "NO-SUCH-SESSION"})
    assert (reply["http_status"], reply["body"]["status_code"]) == (200, 1000)
    assert reply["body"]["data"]["result"] == "UNKNOWN_SESSION"
