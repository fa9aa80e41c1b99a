"""Ordering at every Receiver (issue 8, 4.3 and 4.4; docs/ordering.md):
delivery is at-least-once and messages overtake each other, so a message
older than what we hold is answered with success and changes nothing, and
Locations merge level by level so the last state is the sender's, whatever
the order."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings

from evroam.modules.chargingprofiles.sender import active_profile
from evroam.modules.events import ChargingProfileEvent, Received
from evroam.store import objects
from evroam.store.objects import ObjectKey
from tests.examples import load_example
from tests.locsender import Message, evse, histories, location, sorted_children
from tests.ocpi_calls import call
from tests.pair import registered_pair
from tests.partners import party_named

MARCH, JUNE, JULY = "2026-03-01T00:00:00Z", "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"
OLDER = (200, 1000, "older than the stored version; kept")


async def held(node, party_id: int, module: str, oid: str, type_: str = "", cc: str = "NL",
               pid: str = "CPO") -> dict | None:
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, party_id, cc, pid, oid, type_))
    return json.loads(s.data) if s else None


def answer(status: int, body: dict) -> tuple[int, int, str | None]:
    return status, body["status_code"], body.get("status_message")


def heard(node, event) -> list:
    got: list = []

    @node.on(event)
    async def hook(*args) -> None:
        got.append(args[0])

    return got


# --- 4.3: an older message is a no-op at every Receiver ---------------------------------------


def token(valid: bool, updated: str) -> dict:
    return {"country_code": "DE", "party_id": "EMS", "uid": "0001", "type": "RFID", "contract_id": "DE8ACC0001",
            "issuer": "eMSP", "valid": valid, "whitelist": "ALWAYS", "last_updated": updated}


async def test_tokens_a_late_patch_does_not_revalidate_a_blocked_token(cluster):
    cpo, emsp, _, cpo_at_emsp = await registered_pair(cluster)
    url = cpo_at_emsp.endpoint_url("tokens", "RECEIVER") + "/DE/EMS/0001"
    tok = cpo_at_emsp.token_out
    emsp_at_cpo = await party_named(cpo, "emsp")
    got = heard(cpo, Received.TOKEN)
    assert (await call("PUT", url, tok, token(False, JUNE)))[0] == 201
    status, body, _ = await call("PATCH", url, tok, {"valid": True, "last_updated": MARCH})
    assert answer(status, body) == OLDER
    assert (await held(cpo, emsp_at_cpo.id, "tokens", "0001", "RFID", "DE", "EMS")) == token(False, JUNE)
    assert len(got) == 1  # the PUT's; a kept PATCH fires no hook
    # A newer PATCH still applies, and one of the same time too.
    status, body, _ = await call("PATCH", url, tok, {"valid": True, "last_updated": JULY})
    assert answer(status, body) == (200, 1000, None)
    assert (await held(cpo, emsp_at_cpo.id, "tokens", "0001", "RFID", "DE", "EMS")) == token(True, JULY)
    status, body, _ = await call("PATCH", url, tok, {"whitelist": "NEVER", "last_updated": JULY})
    assert answer(status, body) == (200, 1000, None)
    assert len(got) == 3


def tariff(price: float, updated: str) -> dict:
    return {"country_code": "NL", "party_id": "CPO", "id": "T1", "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
            "last_updated": updated}


async def test_tariffs_an_older_put_is_a_noop(cluster):
    cpo, emsp, _, _ = await registered_pair(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")
    cpo_at_emsp = await party_named(emsp, "nl-cpo")
    url = emsp_at_cpo.endpoint_url("tariffs", "RECEIVER") + "/NL/CPO/T1"
    assert (await call("PUT", url, emsp_at_cpo.token_out, tariff(0.3, JUNE)))[0] == 201
    status, body, _ = await call("PUT", url, emsp_at_cpo.token_out, tariff(0.2, MARCH))
    assert answer(status, body) == OLDER
    assert await held(emsp, cpo_at_emsp.id, "tariffs", "T1") == tariff(0.3, JUNE)


def session(updated: str, status: str = "ACTIVE", kwh: float = 1) -> dict:
    return {"country_code": "NL", "party_id": "CPO", "id": "S1", "start_date_time": MARCH, "kwh": kwh,
            "cdr_token": {"country_code": "DE", "party_id": "EMS", "uid": "0001", "type": "RFID",
                          "contract_id": "DE8ACC0001"},
            "auth_method": "WHITELIST", "location_id": "LOC1", "evse_uid": "#NA", "connector_id": "1",
            "currency": "EUR", "status": status, "last_updated": updated}


async def test_sessions_an_older_put_or_patch_is_a_noop(cluster):
    cpo, emsp, _, _ = await registered_pair(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")
    cpo_at_emsp = await party_named(emsp, "nl-cpo")
    url = emsp_at_cpo.endpoint_url("sessions", "RECEIVER") + "/NL/CPO/S1"
    tok = emsp_at_cpo.token_out
    assert (await call("PUT", url, tok, session(JUNE, "COMPLETED", 5)))[0] == 201
    status, body, _ = await call("PATCH", url, tok, {"status": "ACTIVE", "kwh": 2, "last_updated": MARCH})
    assert answer(status, body) == OLDER
    status, body, _ = await call("PUT", url, tok, session(MARCH))
    assert answer(status, body) == OLDER
    assert await held(emsp, cpo_at_emsp.id, "sessions", "S1") == session(JUNE, "COMPLETED", 5)


async def test_cdrs_never_change_the_same_again_is_success_another_version_is_refused(cluster):
    cpo, emsp, _, _ = await registered_pair(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")
    cpo_at_emsp = await party_named(emsp, "nl-cpo")
    url = emsp_at_cpo.endpoint_url("cdrs", "RECEIVER")
    cdr = load_example("cdr_example.json")
    cdr.update(country_code="NL", party_id="CPO")
    cdr["cdr_token"].update(country_code="DE", party_id="EMS")
    status, body, _ = await call("POST", url, emsp_at_cpo.token_out, cdr)
    assert (status, body["status_code"]) == (201, 1000)
    status, body, _ = await call("POST", url, emsp_at_cpo.token_out, cdr)
    assert (status, body["status_code"]) == (200, 1000)
    older = {**cdr, "total_energy": 1, "last_updated": "2015-06-29T22:00:00Z"}
    status, body, _ = await call("POST", url, emsp_at_cpo.token_out, older)
    assert (status, body["status_code"]) == (200, 2001) and "never changes" in body["status_message"]
    assert await held(emsp, cpo_at_emsp.id, "cdrs", cdr["id"]) == cdr


async def test_chargingprofiles_an_older_active_profile_is_a_noop(cluster):
    cpo, emsp, _, cpo_at_emsp = await registered_pair(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")
    # The eMSP knows the session (a profile for an unknown one may be refused).
    sessions = emsp_at_cpo.endpoint_url("sessions", "RECEIVER") + "/NL/CPO/S1"
    assert (await call("PUT", sessions, emsp_at_cpo.token_out, session(MARCH)))[0] == 201
    url = emsp_at_cpo.endpoint_url("chargingprofiles", "SENDER") + "/S1"
    got = heard(emsp, ChargingProfileEvent.ACTIVE_PROFILE)
    profile = {"charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 16}]}
    newer = {"start_date_time": "2026-03-01T11:00:00Z", "charging_profile": profile}
    older = {"start_date_time": "2026-03-01T10:00:00Z",
             "charging_profile": {**profile, "charging_profile_period": [{"start_period": 0, "limit": 8}]}}
    assert (await call("PUT", url, emsp_at_cpo.token_out, newer))[0] == 201
    status, body, _ = await call("PUT", url, emsp_at_cpo.token_out, older)
    assert answer(status, body) == OLDER and "data" not in body
    assert (await active_profile(emsp.engine, cpo_at_emsp.id, "S1")).to_wire() == newer
    assert len(got) == 1


# --- 4.4: Locations, level by level ----------------------------------------------------------


async def location_receiver(cluster):
    """A registered pair: (the eMSP, its view of the CPO, the URL of Location
    LOC1 at the eMSP's receiver, the token the CPO calls it with)."""
    cpo, emsp, _, cpo_at_emsp = await registered_pair(cluster)
    emsp_at_cpo = await party_named(cpo, "emsp")
    return (emsp, cpo_at_emsp, emsp_at_cpo.endpoint_url("locations", "RECEIVER") + "/NL/CPO/LOC1",
            emsp_at_cpo.token_out)


async def test_locations_an_older_message_is_a_noop_at_every_level(cluster):
    emsp, cpo_at_emsp, loc, tok = await location_receiver(cluster)
    got = heard(emsp, Received.LOCATION)
    assert (await call("PUT", loc, tok, location(JUNE)))[0] == 201
    before = await held(emsp, cpo_at_emsp.id, "locations", "LOC1")
    for path, method, body in (("", "PATCH", {"name": "old", "last_updated": MARCH}),
                               ("", "PUT", {**location(MARCH), "name": "old"}),
                               ("/E0", "PATCH", {"status": "BLOCKED", "last_updated": MARCH}),
                               ("/E0", "PUT", {**evse("E0", MARCH), "status": "BLOCKED"}),
                               ("/E0/1", "PATCH", {"max_amperage": 16, "last_updated": MARCH}),
                               ("/E0/1", "PUT", {**evse("E0", MARCH)["connectors"][0], "max_amperage": 16})):
        status, body, _ = await call(method, loc + path, tok, body)
        assert answer(status, body) == OLDER, (method, path)
    assert await held(emsp, cpo_at_emsp.id, "locations", "LOC1") == before
    assert len(got) == 1


async def test_locations_a_late_put_keeps_a_newer_evse_patch_and_takes_the_rest(cluster):
    # The sequence: PUT(t1), PATCH EVSE E2 (t3), then the PUT of t2 arrives.
    emsp, cpo_at_emsp, loc, tok = await location_receiver(cluster)
    t1, t2, t3 = MARCH, JUNE, JULY
    first = {**location(t1), "evses": [evse("E0", t1), evse("E1", t1), evse("E2", t1)]}
    second = {**first, "name": "Utrecht CS", "last_updated": t2,
              "evses": [{**evse("E0", t1), "status": "BLOCKED", "last_updated": t2},
                        {**evse("E1", t1), "physical_reference": "P1", "last_updated": t2}, evse("E2", t1)]}
    assert (await call("PUT", loc, tok, first))[0] == 201
    status, body, _ = await call("PATCH", loc + "/E2", tok, {"status": "CHARGING", "last_updated": t3})
    assert answer(status, body) == (200, 1000, None)
    status, body, _ = await call("PUT", loc, tok, second)
    assert answer(status, body) == (200, 1000, None)
    status, body, _ = await call("GET", loc, tok)
    doc = body["data"]
    assert (doc["name"], doc["last_updated"]) == ("Utrecht CS", t3)
    assert [(e["uid"], e["status"], e.get("physical_reference"), e["last_updated"]) for e in doc["evses"]] == [
        ("E0", "BLOCKED", None, t2), ("E1", "AVAILABLE", "P1", t2), ("E2", "CHARGING", None, t3)]
    # What we serve is the spec object: the bookkeeping is not in it.
    assert set(doc) == set(second)


async def deliver_over_http(loc: str, tok: str, messages: list[Message]) -> None:
    """Send each message to the Receiver; one it answers 404 (its object is
    not there yet) is sent again later, as a sender's retry would."""
    queue, tries = list(messages), 0
    while queue:
        msg = queue.pop(0)
        tries += 1
        assert tries < 50 * len(messages), "a message never found its object"
        status, body, _ = await call(msg.method, loc + "".join(f"/{p}" for p in msg.path), tok, msg.body)
        if status == 404:
            queue.append(msg)
            continue
        assert (status, body["status_code"]) in ((200, 1000), (201, 1000)), (msg, body)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=histories(lid="LOC-X", most=8))
async def test_locations_any_delivery_order_over_http_ends_in_the_senders_state(cluster, data):
    # One pair for every example: each example gets a Location of its own.
    if not hasattr(cluster, "ordering_pair"):
        cpo, _, _, _ = await registered_pair(cluster)
        cluster.ordering_pair = await party_named(cpo, "emsp")
    emsp_at_cpo = cluster.ordering_pair
    sender, shuffled = data
    lid = f"L{uuid.uuid4().hex[:8]}"
    for msg in sender.messages:
        if msg.path == () and "id" in msg.body:
            msg.body["id"] = lid
    sender.state["id"] = lid
    loc = emsp_at_cpo.endpoint_url("locations", "RECEIVER") + f"/NL/CPO/{lid}"
    await deliver_over_http(loc, emsp_at_cpo.token_out, shuffled)
    status, body, _ = await call("GET", loc, emsp_at_cpo.token_out)
    assert status == 200
    assert sorted_children(body["data"]) == sorted_children(sender.state)
