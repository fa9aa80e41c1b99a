"""The independent partner as CPO, evroam as eMSP: pulls, token push,
commands with results, and the partner's own pushes reaching evroam."""

from __future__ import annotations

import json

import pytest

from evroam.ocpi.commands import CommandType
from evroam.ocpi.tokens import Token
from evroam.store import calllog
from tests.interop.wire import (EVROAM_EMSP, PARTNER_CPO, cdr_token, count_received, delivered, evroam_registers,
                                location, partner_cdr, received, session, tariff, token)
from tests.nodes import wait_for

pytestmark = pytest.mark.timeout(300)  # the first test may build the interop venv

CC, PID = PARTNER_CPO[1], PARTNER_CPO[2]
OUR_TOKEN = cdr_token("NL", "EVE")


@pytest.fixture
async def pair(evroam, partner):
    node = await evroam.node("emsp", EVROAM_EMSP)
    p = await partner(*PARTNER_CPO)
    party = await evroam_registers(node, p)
    return node, p, party


# --- pulls -----------------------------------------------------------------------------------------


async def test_full_pull_of_250_locations(pair):
    node, p, party = pair
    await p.seed("locations", [location(CC, PID, f"LOC{i:03}", f"2026-01-01T00:{i // 60:02}:{i % 60:02}Z")
                               for i in range(250)])
    result = await node.pull(party.name, "locations", full=True)
    assert (result.error, result.stored, result.invalid, result.foreign) == (None, 250, [], 0)
    assert await count_received(node, party, "locations") == 250


async def test_pull_of_one_page_of_tariffs(pair):
    node, p, party = pair
    await p.seed("tariffs", [tariff(CC, PID, f"T{i}") for i in range(3)])
    result = await node.pull(party.name, "tariffs", full=True)
    assert (result.error, result.stored, result.invalid) == (None, 3, [])
    # Stored as received: the partner lower-cased its ids, CiStrings compare case-insensitively.
    t = await received(node, party, "tariffs", CC, PID, "T1")
    assert (t["country_code"], t["party_id"], t["id"]) == ("de", "xwc", "t1")
    assert t["elements"][0]["price_components"][0] == {"type": "ENERGY", "price": 0.3, "step_size": 1}


async def test_pull_of_sessions(pair):
    node, p, party = pair
    await p.seed("sessions", [session(CC, PID, OUR_TOKEN, "S1"), session(CC, PID, OUR_TOKEN, "S2")])
    result = await node.pull(party.name, "sessions")
    assert (result.error, result.stored, result.invalid) == (None, 2, [])
    s = await received(node, party, "sessions", CC, PID, "S2")
    # Quirk: optional fields come as null; evroam drops them rather than storing nulls.
    assert "end_date_time" not in s and "total_cost" not in s
    assert s["charging_periods"] == [{"start_date_time": "2026-01-01T00:00:00Z",
                                      "dimensions": [{"type": "ENERGY", "volume": 1.5}]}]


async def test_delta_pull_after_a_full_pull(pair):
    """The date_from evroam sends (its last pull's start, with fractions and Z)
    is one the partner's filter reads: only what changed since comes back."""
    node, p, party = pair
    await p.seed("tariffs", [tariff(CC, PID, "T1"), tariff(CC, PID, "T2")])
    assert (await node.pull(party.name, "tariffs", full=True)).stored == 2
    await p.seed("tariffs", [{**tariff(CC, PID, "T2"), "currency": "USD", "last_updated": "2099-01-01T00:00:00Z"}])
    result = await node.pull(party.name, "tariffs")
    assert (result.full, result.error, result.stored) == (False, None, 1)
    assert (await received(node, party, "tariffs", CC, PID, "T2"))["currency"] == "USD"
    [delta] = [r for r in await _outbound_gets(node, "/tariffs/") if "date_from=" in r["url"]]
    assert delta["http_status"] == 200


async def _outbound_gets(node, part: str) -> list[dict]:
    await node.call_log.flush()
    return [r for r in await calllog.recent(node.engine, limit=50)
            if r["direction"] == "out" and r["method"] == "GET" and part in r["url"]]


async def test_pull_of_cdrs_without_evse_uid_is_refused(pair):
    """Partner fault: its CdrLocation has no evse_uid, which 2.2.1 requires."""
    node, p, party = pair
    await p.seed("cdrs", [partner_cdr(CC, PID, OUR_TOKEN, "CDR1")])
    result = await node.pull(party.name, "cdrs")
    assert (result.error, result.stored) == (None, 0)
    [why] = result.invalid
    assert "cdr_location.evse_uid" in why
    assert await count_received(node, party, "cdrs") == 0


async def test_pull_refused_without_an_envelope(pair):
    """The partner forgot us (its storage was emptied): it answers 403
    {"detail": …}, not an OCPI envelope. The pull fails and says what came."""
    node, p, party = pair
    await p.reset()
    result = await node.pull(party.name, "tariffs")
    assert result.stored == 0
    assert "HTTP 403" in result.error and "Your authorization token is invalid." in result.error


# --- the partner's own pushes ----------------------------------------------------------------------


async def test_partner_pushes_a_location(pair):
    node, p, party = pair
    await p.seed("locations", [location(CC, PID, "LOC9")])
    reply = await p.push("locations", "loc9")
    assert (reply["status_code"], reply["response"]["status_code"]) in ((200, 1000), (201, 1000))
    stored = await received(node, party, "locations", CC, PID, "LOC9")
    assert stored is not None and stored["evses"][0]["uid"] == "e1"


async def test_partner_pushes_a_session(pair):
    node, p, party = pair
    await p.seed("sessions", [session(CC, PID, OUR_TOKEN, "S7")])
    reply = await p.push("sessions", "s7")
    assert (reply["status_code"], reply["response"]["status_code"]) in ((200, 1000), (201, 1000))
    assert (await received(node, party, "sessions", CC, PID, "S7"))["kwh"] == 1.5


async def test_partner_pushes_a_cdr_without_evse_uid(pair):
    """Partner fault: its CDR lacks cdr_location.evse_uid. evroam refuses it
    with 2001 naming the field, and stores nothing."""
    node, p, party = pair
    await p.seed("cdrs", [partner_cdr(CC, PID, OUR_TOKEN, "CDR2")])
    reply = await p.push("cdrs", "cdr2")
    # The library keeps only the headers of a CDR push's answer; the call log has the body.
    # HTTP 200 with 2001: the spec answers a well-formed request it cannot use with an OCPI error.
    assert reply["status_code"] == 200
    await node.call_log.flush()
    [row] = [r for r in await calllog.recent(node.engine, limit=20)
             if r["direction"] == "in" and r["method"] == "POST" and "/cdrs" in r["url"]]
    assert (row["http_status"], row["ocpi_status"]) == (200, 2001)
    assert "cdr_location.evse_uid" in json.loads(row["response_body"])["status_message"]
    assert await count_received(node, party, "cdrs") == 0


# --- tokens and commands ---------------------------------------------------------------------------


async def test_token_push_to_the_partner(pair):
    node, p, party = pair
    await node.publish("tokens", Token.from_wire(token("NL", "EVE", "RFID-1", whitelist="ALLOWED")))
    await wait_for(lambda: delivered(node), what="the token PUT delivered")
    stored = (await p.state())["objects"]["tokens"]
    assert list(stored) == ["rfid-1|RFID"]
    assert stored["rfid-1|RFID"]["country_code"] == "nl" and stored["rfid-1|RFID"]["whitelist"] == "ALLOWED"


async def test_start_session_command_with_result(pair):
    node, p, party = pair
    await p.seed("locations", [location(CC, PID, "LOC1")])
    uid = await node.send_command(party.name, CommandType.START_SESSION,
                                  {"token": token("NL", "EVE", "RFID-1"), "location_id": "loc1", "evse_uid": "e1"})
    # The partner polls its storage for the charger's answer, then POSTs the result.
    await wait_for(lambda: _state(node, uid, "COMPLETED"), timeout=15, what="the CommandResult")
    t = await node.command(uid)
    assert (t.response, t.status_code, t.result) == ("ACCEPTED", 1000, "ACCEPTED")
    [got] = (await p.state())["commands_received"]
    assert got["command"] == "START_SESSION" and got["data"]["response_url"] == t.response_url


async def test_start_session_at_an_unknown_location(pair):
    node, p, party = pair
    uid = await node.send_command(party.name, CommandType.START_SESSION,
                                  {"token": token("NL", "EVE", "RFID-1"), "location_id": "NOWHERE"})
    # The partner answers 2003 with a REJECTED CommandResponse, as the spec's diagram has it.
    t = await node.command(uid)
    assert (t.status_code, t.response) == (2003, "REJECTED")
    assert (await p.state())["commands_received"] == []


async def _state(node, uid: str, state: str) -> bool:
    t = await node.command(uid)
    return t is not None and t.state == state
