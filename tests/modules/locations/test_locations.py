"""Locations between a CPO and an eMSP (mod_locations.asciidoc): the Sender's
list and objects, the Receiver's PUT/PATCH at three levels with last_updated
propagation (ocpi-notes A6.5), our own EVSE changes pushed as small PATCHes,
and full and delta pulls."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from evroam.ocpi.locations import EVSE, Connector, Location
from evroam.modules.events import Received
from evroam.store import calllog, objects
from evroam.store.objects import ObjectKey
from evroam.modules.locations import owner as ours
from tests.examples import load_example
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.pair import registered_pair
from tests.partners import CPO, party_named

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-02-01T00:00:00Z"
T2 = "2026-02-02T00:00:00Z"
T3 = "2026-02-03T00:00:00Z"
T4 = "2026-02-04T00:00:00Z"


def connector(cid: str = "1", updated: str = T0, tariff_ids: tuple[str, ...] = ("T1",)) -> dict:
    return {"id": cid, "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
            "max_voltage": 230, "max_amperage": 32, "max_electric_power": 22000, "tariff_ids": list(tariff_ids),
            "last_updated": updated}


def evse(uid: str = "E1", status: str = "AVAILABLE", updated: str = T0, connectors: list | None = None) -> dict:
    return {"uid": uid, "evse_id": f"NL*CPO*E{uid}", "status": status,
            "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            "connectors": connectors or [connector(updated=updated)], "physical_reference": uid,
            "last_updated": updated}


def location(lid: str = "LOC1", updated: str = T0, publish: bool = True, evses: list | None = None,
             cc: str = "NL", pid: str = "CPO") -> dict:
    return {"country_code": cc, "party_id": pid, "id": lid, "publish": publish, "name": "Stationsplein",
            "address": "Stationsplein 1", "city": "Utrecht", "postal_code": "3511 ED", "country": "NLD",
            "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
            "evses": evses if evses is not None else [evse("E1", connectors=[connector("1"), connector("2")]),
                                                      evse("E2")],
            "time_zone": "Europe/Amsterdam", "last_updated": updated}


async def emsp_receiver(cpo) -> tuple[str, str]:
    """The eMSP's Receiver URL and the token the CPO calls it with (B)."""
    emsp_at_cpo = await party_named(cpo, "emsp")
    return emsp_at_cpo.endpoint_url("locations", "RECEIVER"), emsp_at_cpo.token_out


async def held(node, party_id: int, lid: str = "LOC1") -> dict | None:
    """A Location as stored at `node` (party_id 0: our own)."""
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey("locations", party_id, "NL", "CPO", lid))
    return json.loads(s.data) if s else None


def ids(body: dict) -> list[str]:
    return [loc["id"] for loc in body["data"]]


def is_envelope(body: dict) -> bool:
    return isinstance(body.get("status_code"), int) and "timestamp" in body


# --- Sender --------------------------------------------------------------------------------


async def test_sender_list_paginated_and_date_filtered(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    for i, lid in enumerate(("L1", "L2", "L3")):
        await cpo.publish("locations", Location.from_wire(location(lid, updated=f"2026-01-0{i + 1}T00:00:00Z",
                                                                   publish=lid != "L3")))
    url, tok = party.endpoint_url("locations", "SENDER"), party.token_out
    status, body, headers = await call("GET", f"{url}?limit=2", tok)
    assert (status, body["status_code"], ids(body)) == (200, 1000, ["L1", "L2"])
    assert headers["X-Total-Count"] == "3" and "offset=2" in headers["Link"] and "limit=2" in headers["Link"]
    status, body, headers = await call("GET", f"{url}?offset=2&limit=2", tok)
    assert ids(body) == ["L3"] and "Link" not in headers
    # date_from inclusive, date_to exclusive.
    status, body, headers = await call("GET", f"{url}?date_from=2026-01-02T00:00:00Z&date_to=2026-01-03T00:00:00Z",
                                       tok)
    assert ids(body) == ["L2"] and headers["X-Total-Count"] == "1"
    # Trailing slash, and a DateTime without Z (UTC by definition).
    status, body, _ = await call("GET", f"{url}/?date_from=2026-01-03T00:00:00", tok)
    assert (status, ids(body)) == (200, ["L3"])
    # publish=false is for the Receiver's apps, not a reason to withhold it (spec uc3).
    assert body["data"][0]["publish"] is False
    status, body, _ = await call("GET", f"{url}?date_from=yesterday", tok)
    assert (status, body["status_code"]) == (200, 2001) and "date_from" in body["status_message"]
    status, body, _ = await call("GET", url, None)
    assert (status, body["status_code"]) == (401, 2000)


async def test_sender_get_location_evse_connector(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    await cpo.publish("locations", Location.from_wire(location()))
    url, tok = party.endpoint_url("locations", "SENDER"), party.token_out
    status, body, _ = await call("GET", f"{url}/LOC1", tok)
    assert (status, body["status_code"], body["data"]) == (200, 1000, location())
    status, body, _ = await call("GET", f"{url}/loc1/e1", tok)  # CiString ids
    assert (status, body["data"]) == (200, location()["evses"][0])
    status, body, _ = await call("GET", f"{url}/LOC1/E1/2/", tok)  # trailing slash
    assert (status, body["data"]) == (200, connector("2"))
    for path in ("NOPE", "NOPE/E1", "LOC1/E9", "LOC1/E9/1", "LOC1/E1/9"):
        status, body, _ = await call("GET", f"{url}/{path}", tok)
        assert (status, body["status_code"]) == (404, 2000), path
        assert is_envelope(body)
    status, body, _ = await call("GET", f"{url}/LOC1", None)
    assert (status, body["status_code"]) == (401, 2000)
    # The Sender has no PUT: 405, still an envelope.
    status, body, _ = await call("PUT", f"{url}/LOC1", tok, location())
    assert status == 405 and is_envelope(body)
    # Version details: the CPO sends Locations, the eMSP receives them.
    assert ("locations", "SENDER") in {(e["identifier"], e["role"]) for e in party.endpoints}
    emsp_at_cpo = await party_named(cpo, "emsp")
    assert ("locations", "RECEIVER") in {(e["identifier"], e["role"]) for e in emsp_at_cpo.endpoints}


# --- Receiver --------------------------------------------------------------------------------


async def test_receiver_put_location(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    base, tok = await emsp_receiver(cpo)
    # A peer that lower-cases its URLs while the body keeps the case: one object.
    status, body, _ = await call("PUT", f"{base}/nl/cpo/loc1", tok, location())
    assert (status, body["status_code"]) == (201, 1000)
    status, body, _ = await call("PUT", f"{base}/NL/CPO/LOC1/", tok, location(updated=T1))  # trailing slash
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("GET", f"{base}/NL/CPO/LOC1", tok)
    assert (status, body["data"]) == (200, location(updated=T1))
    assert (await held(emsp, party.id))["last_updated"] == T1
    # URL and body disagree: 2001 naming the field, nothing written.
    for path, doc, field in (("NL/CPO/LOC2", location("LOC1"), "id"),
                             ("NL/CPO/LOC1", location(cc="BE", updated=T2), "country_code"),
                             ("NL/CPO/LOC1", location(pid="XYZ", updated=T2), "party_id")):
        status, body, _ = await call("PUT", f"{base}/{path}", tok, doc)
        assert (status, body["status_code"]) == (200, 2001), path
        assert field in body["status_message"]
    # Not a cc/pid of the caller's roles: 404, nothing written.
    status, body, _ = await call("PUT", f"{base}/DE/EMS/LOC9", tok, location("LOC9", cc="DE", pid="EMS"))
    assert (status, body["status_code"]) == (404, 2000)
    # Invalid objects: 2001 naming the field; broken JSON: HTTP 400.
    bad = location("LOC3")
    bad["evses"][1]["status"] = "available"
    status, body, _ = await call("PUT", f"{base}/NL/CPO/LOC3", tok, bad)
    assert (status, body["status_code"]) == (200, 2001) and "evses.1.status" in body["status_message"]
    status, body, _ = await call("PUT", f"{base}/NL/CPO/LOC3", tok, location("LOC3", evses=[evse("E1"), evse("e1")]))
    assert (status, body["status_code"]) == (200, 2001) and "appears twice" in body["status_message"]
    status, body, _ = await call("PUT", f"{base}/NL/CPO/LOC3", tok, b'{"id": ')
    assert (status, body["status_code"]) == (400, 2000)
    status, body, _ = await call("PUT", f"{base}/NL/CPO/LOC3", None, location("LOC3"))
    assert (status, body["status_code"]) == (401, 2000)
    for path in ("NL/CPO/LOC2", "NL/CPO/LOC3", "DE/EMS/LOC9"):
        status, body, _ = await call("GET", f"{base}/{path}", tok)
        assert status == 404 and is_envelope(body)
    assert (await held(emsp, party.id))["last_updated"] == T1
    # No DELETE and no POST in this module: 405 with an envelope.
    for method in ("DELETE", "POST"):
        status, body, _ = await call(method, f"{base}/NL/CPO/LOC1", tok, location())
        assert (status, body["status_code"]) == (405, 2000)


async def test_receiver_put_evse_and_connector(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    base, tok = await emsp_receiver(cpo)
    loc = f"{base}/NL/CPO/LOC1"
    assert (await call("PUT", loc, tok, location()))[0] == 201
    # A new EVSE: 201, and the Location takes its last_updated.
    status, body, _ = await call("PUT", f"{loc}/E3", tok, evse("E3", updated=T1))
    assert (status, body["status_code"]) == (201, 1000)
    doc = await held(emsp, party.id)
    assert ([e["uid"] for e in doc["evses"]], doc["last_updated"]) == (["E1", "E2", "E3"], T1)
    # Replacing it: 200, in place, whatever the case of the URL.
    status, body, _ = await call("PUT", f"{loc}/e3", tok, evse("E3", status="CHARGING", updated=T2))
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("GET", f"{base}/nl/cpo/loc1/E3", tok)
    assert body["data"] == evse("E3", status="CHARGING", updated=T2)
    doc = await held(emsp, party.id)
    assert (len(doc["evses"]), doc["last_updated"]) == (3, T2)
    # A new Connector: 201, and both parents take its last_updated.
    status, body, _ = await call("PUT", f"{loc}/E1/3", tok, connector("3", updated=T3))
    assert (status, body["status_code"]) == (201, 1000)
    status, body, _ = await call("GET", f"{loc}/E1", tok)
    assert ([c["id"] for c in body["data"]["connectors"]], body["data"]["last_updated"]) == (["1", "2", "3"], T3)
    assert (await held(emsp, party.id))["last_updated"] == T3
    status, body, _ = await call("PUT", f"{loc}/E1/3/", tok, connector("3", updated=T4, tariff_ids=("T2",)))
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("GET", f"{loc}/E1/3", tok)
    assert body["data"] == connector("3", updated=T4, tariff_ids=("T2",))
    # An EVSE change older than the Location's last change: the EVSE is
    # replaced, the Location's last_updated does not go back.
    status, body, _ = await call("PUT", f"{loc}/E2", tok, evse("E2", status="BLOCKED", updated=T1))
    assert (status, body["status_code"]) == (200, 1000)
    doc = await held(emsp, party.id)
    assert (doc["evses"][1]["status"], doc["last_updated"]) == ("BLOCKED", T4)
    before = await held(emsp, party.id)
    # The body's uid / id must be the URL's.
    status, body, _ = await call("PUT", f"{loc}/E4", tok, evse("E5"))
    assert (status, body["status_code"]) == (200, 2001) and "uid" in body["status_message"]
    status, body, _ = await call("PUT", f"{loc}/E1/4", tok, connector("5"))
    assert (status, body["status_code"]) == (200, 2001) and "id" in body["status_message"]
    # Under an unknown parent: 404 (ocpi/ocpi#406); nothing is created.
    for url, obj in ((f"{base}/NL/CPO/NOPE/E1", evse("E1")), (f"{base}/NL/CPO/NOPE/E1/1", connector("1")),
                     (f"{loc}/E9/1", connector("1"))):
        status, body, _ = await call("PUT", url, tok, obj)
        assert (status, body["status_code"]) == (404, 2000), url
    # Invalid children: 2001 naming the field.
    bad = connector("6")
    del bad["power_type"]
    status, body, _ = await call("PUT", f"{loc}/E1/6", tok, bad)
    assert (status, body["status_code"]) == (200, 2001) and "power_type" in body["status_message"]
    status, body, _ = await call("PUT", f"{loc}/E6", tok, evse("E6", connectors=[connector("1"), connector("1")]))
    assert (status, body["status_code"]) == (200, 2001) and "appears twice" in body["status_message"]
    status, body, _ = await call("PUT", f"{loc}/E6", tok, b"{")
    assert (status, body["status_code"]) == (400, 2000)
    assert await held(emsp, party.id) == before
    status, body, _ = await call("GET", f"{base}/NL/CPO/NOPE", tok)
    assert (status, body["status_code"]) == (404, 2000)
    status, body, _ = await call("GET", f"{loc}/E9", tok)
    assert (status, body["status_code"]) == (404, 2000)


async def test_receiver_patch_each_level(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    base, tok = await emsp_receiver(cpo)
    loc = f"{base}/NL/CPO/LOC1"
    assert (await call("PUT", loc, tok, location()))[0] == 201
    status, body, _ = await call("PATCH", loc, tok, {"name": "Utrecht CS", "last_updated": T1})
    assert (status, body["status_code"]) == (200, 1000)
    doc = await held(emsp, party.id)
    assert (doc["name"], doc["last_updated"], doc["evses"]) == ("Utrecht CS", T1, location()["evses"])
    # An EVSE: the Location takes the PATCH's last_updated.
    status, body, _ = await call("PATCH", f"{loc}/e2", tok, {"status": "CHARGING", "last_updated": T2})
    assert (status, body["status_code"]) == (200, 1000)
    doc = await held(emsp, party.id)
    assert doc["evses"][1] == {**evse("E2"), "status": "CHARGING", "last_updated": T2}
    assert doc["last_updated"] == T2
    # A Connector: EVSE and Location take it; the other Connector is untouched.
    status, body, _ = await call("PATCH", f"{loc}/E1/2/", tok, {"tariff_ids": ["T9"], "last_updated": T3})
    assert (status, body["status_code"]) == (200, 1000)
    doc = await held(emsp, party.id)
    assert doc["evses"][0]["connectors"] == [connector("1"), connector("2", updated=T3, tariff_ids=("T9",))]
    assert (doc["evses"][0]["last_updated"], doc["last_updated"]) == (T3, T3)
    before = doc
    # Without last_updated: 2001, at every level.
    for path, patch in (("", {"name": "x"}), ("/E1", {"status": "BLOCKED"}), ("/E1/1", {"max_amperage": 16})):
        status, body, _ = await call("PATCH", loc + path, tok, patch)
        assert (status, body["status_code"]) == (200, 2001) and "last_updated" in body["status_message"], path
    # A PATCH never creates, at any level.
    for path in ("NL/CPO/LOC9", "NL/CPO/LOC1/E9", "NL/CPO/LOC1/E1/9", "NL/CPO/LOC9/E1/1"):
        status, body, _ = await call("PATCH", f"{base}/{path}", tok, {"status": "BLOCKED", "last_updated": T4})
        assert (status, body["status_code"]) == (404, 2000), path
    # The merged object must still be valid: 2001 naming the field.
    for path, patch, field in (("/E1", {"status": "charging"}, "status"),
                               ("/E1", {"connectors": []}, "connectors"),
                               ("/E1/1", {"max_voltage": "230"}, "max_voltage"),
                               ("", {"coordinates": {"latitude": "52.1"}}, "coordinates"),
                               ("", {"publish": None}, "publish")):
        status, body, _ = await call("PATCH", loc + path, tok, {**patch, "last_updated": T4})
        assert (status, body["status_code"]) == (200, 2001), (path, patch)
        assert field in body["status_message"], body["status_message"]
    # Ids in the body must be the URL's.
    for path, patch, field in (("/E1", {"uid": "E2"}, "uid"), ("/E1/1", {"id": "2"}, "id"),
                               ("", {"id": "LOC2"}, "id"), ("", {"country_code": "BE"}, "country_code")):
        status, body, _ = await call("PATCH", loc + path, tok, {**patch, "last_updated": T4})
        assert (status, body["status_code"]) == (200, 2001) and field in body["status_message"], path
    status, body, _ = await call("PATCH", loc, tok, b"[]")
    assert (status, body["status_code"]) == (200, 2001)
    status, body, _ = await call("PATCH", loc, tok, b"{")
    assert (status, body["status_code"]) == (400, 2000)
    status, body, _ = await call("PATCH", loc, tok, {"name": "x", "last_updated": "2026-02-04T00:00:00+01:00"})
    assert (status, body["status_code"]) == (200, 2001)
    # Delivery is at-least-once: an older PATCH is answered but changes nothing.
    status, body, _ = await call("PATCH", f"{loc}/E2", tok, {"status": "AVAILABLE", "last_updated": T1})
    assert (status, body["status_code"]) == (200, 1000) and "older" in body["status_message"]
    assert await held(emsp, party.id) == before
    # Nothing is deleted: an EVSE goes with status REMOVED and stays listed.
    status, body, _ = await call("PATCH", f"{loc}/E2", tok, {"status": "REMOVED", "last_updated": T4})
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("GET", loc, tok)
    assert [(e["uid"], e["status"]) for e in body["data"]["evses"]] == [("E1", "AVAILABLE"), ("E2", "REMOVED")]


async def test_received_hook_gets_the_whole_location(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    base, tok = await emsp_receiver(cpo)
    got: list[tuple[Location, str]] = []

    @emsp.on(Received.LOCATION)
    async def received(loc: Location, partner) -> None:
        got.append((loc, partner.name))

    loc = f"{base}/NL/CPO/LOC1"
    await call("PUT", loc, tok, location())
    await call("PUT", f"{loc}/E3", tok, evse("E3", updated=T1))
    await call("PATCH", f"{loc}/E1/1", tok, {"tariff_ids": ["T7"], "last_updated": T2})
    await call("PATCH", f"{loc}/E1/1", tok, {"tariff_ids": ["T8"]})  # rejected: no hook
    # A repeated or older version is a no-op (200, no hook).
    for method, path, obj in (("PATCH", "/E1/1", {"tariff_ids": ["T7"], "last_updated": T2}),
                              ("PUT", "/E3", evse("E3", updated=T1)),
                              ("PUT", "/E1/1", connector("1", tariff_ids=("T6",))),
                              ("PUT", "", location(updated=T1))):
        status, body, _ = await call(method, loc + path, tok, obj)
        assert (status, body["status_code"]) == (200, 1000), (method, path)
        assert body["status_message"] in ("same version as stored", "older than the stored version; kept")
    assert [name for _, name in got] == [party.name] * 3
    last = got[-1][0]
    assert isinstance(last, Location) and [e.uid for e in last.evses] == ["E1", "E2", "E3"]
    assert last.evses[0].connectors[0].tariff_ids == ["T7"]
    assert last.last_updated == datetime(2026, 2, 2, tzinfo=UTC)


async def test_concurrent_evse_patches_to_one_location_all_land(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    await cpo.delivery.stop()  # the eMSP's copy changes only through the PATCHes below
    base, tok = await emsp_receiver(cpo)
    loc = f"{base}/NL/CPO/LOC1"
    n = 10
    doc = location(evses=[evse(f"E{i}") for i in range(n)])
    assert (await call("PUT", loc, tok, doc))[0] == 201
    await cpo.publish("locations", Location.from_wire(doc))
    results = await asyncio.gather(
        *(call("PATCH", f"{loc}/E{i}", tok, {"status": "CHARGING", "last_updated": T1}) for i in range(n)),
        *(ours.set_evse_status(cpo, "LOC1", f"E{i}", "BLOCKED") for i in range(n)))
    assert [r[:1] for r in results[:n]] == [(200,)] * n
    assert {e["status"] for e in (await held(emsp, party.id))["evses"]} == {"CHARGING"}
    assert {e["status"] for e in (await held(cpo, 0))["evses"]} == {"BLOCKED"}


# --- our own Locations, pushed and pulled --------------------------------------------------------


async def outbound(node, method: str) -> list[dict]:
    await node.call_log.flush()
    rows = await calllog.recent(node.engine, limit=100)
    return [r for r in reversed(rows) if r["direction"] == "out" and r["method"] == method]


async def test_push_location_then_small_patches(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    cpo.start_workers()
    await cpo.publish("locations", Location.from_wire(location()))
    await wait_for(lambda: held(emsp, party.id), what="the Location at the eMSP")
    assert await held(emsp, party.id) == location()

    # An EVSE status change goes out as a PATCH of that EVSE only.
    at = datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
    stamp = "2026-03-01T12:00:00.5Z"
    await ours.set_evse_status(cpo, "loc1", "e2", "CHARGING", at=at)

    async def evse2_charging() -> bool:
        doc = await held(emsp, party.id)
        return doc["evses"][1]["status"] == "CHARGING"

    await wait_for(evse2_charging, what="EVSE E2 CHARGING at the eMSP")
    for doc in (await held(emsp, party.id), await held(cpo, 0)):
        assert (doc["evses"][1]["last_updated"], doc["last_updated"]) == (stamp, stamp)
        assert doc["evses"][0] == location()["evses"][0]
    patch = (await outbound(cpo, "PATCH"))[-1]
    assert patch["url"].endswith("/locations/NL/CPO/LOC1/E2")
    assert json.loads(patch["request_body"]) == {"status": "CHARGING", "last_updated": stamp}
    assert len(await outbound(cpo, "PUT")) == 1

    # A Connector change: PATCH at …/{evse_uid}/{connector_id}, parents updated.
    await ours.patch_connector(cpo, "LOC1", "E1", "2", {"tariff_ids": ["T5"]}, at=datetime(2026, 3, 2, tzinfo=UTC))

    async def connector_tariff() -> bool:
        doc = await held(emsp, party.id)
        return doc["evses"][0]["connectors"][1]["tariff_ids"] == ["T5"]

    await wait_for(connector_tariff, what="connector tariff at the eMSP")
    doc = await held(emsp, party.id)
    assert (doc["evses"][0]["last_updated"], doc["last_updated"]) == ("2026-03-02T00:00:00Z",) * 2
    patch = (await outbound(cpo, "PATCH"))[-1]
    assert patch["url"].endswith("/locations/NL/CPO/LOC1/E1/2")
    assert json.loads(patch["request_body"]) == {"tariff_ids": ["T5"], "last_updated": "2026-03-02T00:00:00Z"}

    # A new EVSE cannot be PATCHed into existence: the whole Location is PUT.
    await ours.upsert_evse(cpo, "LOC1", EVSE.from_wire(evse("E3", updated="2026-03-03T00:00:00Z")))
    await wait_for(lambda: _evse_count(emsp, party.id, 3), what="EVSE E3 at the eMSP")
    # Removing it is a status change, never a deletion.
    await ours.set_evse_status(cpo, "LOC1", "E3", "REMOVED")
    await wait_for(lambda: _status_of(emsp, party.id, 2, "REMOVED"), what="EVSE E3 REMOVED at the eMSP")
    assert await held(emsp, party.id) == await held(cpo, 0)

    # Two changes of one EVSE queued before delivery fold into one PATCH with both.
    await cpo.delivery.stop()
    await ours.set_evse_status(cpo, "LOC1", "E1", "BLOCKED", at=datetime(2026, 3, 4, tzinfo=UTC))
    await ours.patch_evse(cpo, "LOC1", "E1", {"physical_reference": "P9"}, at=datetime(2026, 3, 5, tzinfo=UTC))
    cpo.delivery.start()
    await wait_for(lambda: _status_of(emsp, party.id, 0, "BLOCKED"), what="EVSE E1 BLOCKED at the eMSP")
    assert (await held(emsp, party.id))["evses"][0]["physical_reference"] == "P9"
    patch = (await outbound(cpo, "PATCH"))[-1]
    assert patch["url"].endswith("/locations/NL/CPO/LOC1/E1")
    assert json.loads(patch["request_body"]) == {"status": "BLOCKED", "physical_reference": "P9",
                                                 "last_updated": "2026-03-05T00:00:00Z"}
    assert await held(emsp, party.id) == await held(cpo, 0)


async def _evse_count(node, party_id: int, n: int) -> bool:
    return len((await held(node, party_id))["evses"]) == n


async def _status_of(node, party_id: int, i: int, status: str) -> bool:
    return (await held(node, party_id))["evses"][i]["status"] == status


async def test_pull_full_and_delta(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    await cpo.delivery.stop()  # nothing is pushed: the eMSP learns only by pulling
    await cpo.publish("locations", Location.from_wire(location("LOC1")))
    await cpo.publish("locations", Location.from_wire(location("LOC2")))
    full = await emsp.pull(party.name, "locations", full=True)
    assert (full.stored, full.error, full.invalid) == (2, None, [])
    assert await held(emsp, party.id, "LOC2") == location("LOC2")
    # An EVSE change moves its Location's last_updated, so a delta pull sees it.
    await ours.set_evse_status(cpo, "LOC2", "E1", "OUTOFORDER")
    delta = await emsp.pull(party.name, "locations")
    assert (delta.stored, delta.error) == (1, None)
    assert (await held(emsp, party.id, "LOC2"))["evses"][0]["status"] == "OUTOFORDER"
    assert await held(emsp, party.id, "LOC2") == await held(cpo, 0, "LOC2")


async def test_our_helpers_refuse_unknown_and_invalid(cluster):
    cpo = await cluster.node("cpo", CPO)
    await cpo.publish("locations", Location.from_wire(location()))
    before = await held(cpo, 0)
    with pytest.raises(ours.UnknownLocationObject):
        await ours.set_evse_status(cpo, "NOPE", "E1", "CHARGING")
    with pytest.raises(ours.UnknownLocationObject):
        await ours.set_evse_status(cpo.engine, "LOC1", "E9", "CHARGING")
    with pytest.raises(ours.UnknownLocationObject):
        await ours.patch_connector(cpo, "LOC1", "E1", "9", {"max_amperage": 16})
    with pytest.raises(ours.UnknownLocationObject):
        await ours.upsert_connector(cpo, "LOC1", "E9", Connector.from_wire(connector("1")))
    with pytest.raises(ValueError):
        await ours.set_evse_status(cpo, "LOC1", "E1", "charging")
    with pytest.raises(ValidationError):
        await ours.patch_evse(cpo, "LOC1", "E1", {"floor_level": "12345"})
    assert await held(cpo, 0) == before
    # A Connector added: EVSE and Location take its last_updated.
    await ours.upsert_connector(cpo, "loc1", "e2", Connector.from_wire(connector("2", updated=T1)))
    doc = await held(cpo, 0)
    assert ([c["id"] for c in doc["evses"][1]["connectors"]], doc["evses"][1]["last_updated"],
            doc["last_updated"]) == (["1", "2"], T1, T1)


# --- the spec's examples ------------------------------------------------------------------------

LOCATION_EXAMPLES = (
    "location_example.json",
    "location_example_parking_garage_opening_hours.json",
    "location_example_uc2_destination_charger.json",
    "location_example_uc3_destination_charger_not_published.json",
    "location_example_uc4_limited_visibility.json",
    "location_example_uc5_home_charge_point.json",
)


def as_ours(examples: list[object]) -> list[dict]:
    """The spec examples under the CPO's own cc/pid (a party writes only under
    its own), each with its own id (uc2 and uc3 share one)."""
    out: list[dict] = []
    for i, ex in enumerate(examples):
        assert isinstance(ex, dict)
        lid = ex["id"] if ex["id"] not in {o["id"] for o in out} else f"{ex['id'][:30]}-{i}"
        out.append({**ex, "country_code": "NL", "party_id": "CPO", "id": lid})
    return out


async def test_spec_examples_through_receiver_and_sender(cluster):
    examples = as_ours([load_example(name) for name in LOCATION_EXAMPLES])
    cpo, emsp, _, party = await registered_pair(cluster)
    base, tok = await emsp_receiver(cpo)
    for ex in examples:
        status, body, _ = await call("PUT", f"{base}/NL/CPO/{ex['id']}", tok, ex)
        assert (status, body["status_code"]) == (201, 1000), (ex["id"], body)
        status, body, _ = await call("GET", f"{base}/NL/CPO/{ex['id']}", tok)
        assert body["data"] == ex
        await cpo.publish("locations", Location.from_wire(ex))
    # The Sender serves them all, publish=false ones included.
    url = party.endpoint_url("locations", "SENDER")
    status, body, _ = await call("GET", url, party.token_out)
    assert body["data"] == examples
    status, body, _ = await call("GET", f"{url}/LOC1/3256/2", party.token_out)
    assert body["data"] == examples[0]["evses"][0]["connectors"][1]

    # The spec's PATCH examples, each at its level, on location_example (LOC1).
    loc = f"{base}/NL/CPO/LOC1"
    stamp = "2019-06-24T12:39:09Z"
    status, body, _ = await call("PATCH", loc, tok, load_example("location_patch_example_location.json"))
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("PATCH", f"{loc}/3256", tok, load_example("location_patch_example_status.json"))
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("PATCH", f"{loc}/3256/2", tok, load_example("location_patch_example_tariff.json"))
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("PATCH", f"{loc}/3257", tok, load_example("location_patch_example_remove_evse.json"))
    assert (status, body["status_code"]) == (200, 1000)
    doc = (await call("GET", loc, tok))[1]["data"]
    assert (doc["name"], doc["last_updated"]) == ("Interparking Gent Zuid", stamp)
    e1, e2 = doc["evses"]
    assert (e1["status"], e1["last_updated"], e1["connectors"][1]["tariff_ids"]) == ("CHARGING", stamp, ["15"])
    assert e1["connectors"][0] == examples[0]["evses"][0]["connectors"][0]
    assert (e2["uid"], e2["status"], e2["last_updated"]) == ("3257", "REMOVED", stamp)
    # The spec's "add an EVSE" example is not a valid EVSE (ocpi-notes H1).
    status, body, _ = await call("PUT", f"{loc}/3256", tok, load_example("location_put_example_add_evse.json"))
    assert (status, body["status_code"]) == (200, 2001)
    for field in ("power_type", "max_voltage", "max_amperage", "physical_reference"):
        assert field in body["status_message"]
    assert (await call("GET", loc, tok))[1]["data"] == doc
