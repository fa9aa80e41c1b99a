"""Sessions between a CPO and an eMSP (mod_sessions.asciidoc): the Sender
list and charging preferences, the Receiver's PUT/PATCH rules, and the
CPO-side helpers pushing through the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from evroam.node import Node
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import ChargingPreferencesResponse, Session
from evroam.ocpi.tariffs import Tariff
from evroam.pricing import CdrBuildError
from evroam.modules.events import Received, SessionEvent
from evroam.modules.sessions.receiver import knows_evse
from evroam.store import objects
from evroam.store.tables import outbox
from evroam.modules.sessions import owner as ops
from tests.charging import T0, location, period, session, tariff, token, ts
from tests.examples import load_example
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.pair import pair
from tests.partners import drained


async def outbox_rows(node: Node) -> list[tuple[str, dict | None]]:
    async with node.engine.connect() as conn:
        rows = (await conn.execute(sa.select(outbox.c.method, outbox.c.patch).order_by(outbox.c.id))).all()
    return [(r.method, r.patch) for r in rows]


# --- Sender -------------------------------------------------------------------------------


async def test_sender_list_needs_date_from_and_shows_only_own_sessions(cluster):
    p = await pair(cluster)
    for sid, tok, minute in (("S1", token(), 1), ("S2", token("FR", "OTH"), 2), ("S3", token("de", "ems"), 3)):
        await p.cpo.publish("sessions", Session.from_wire(session(sid, tok=tok, updated=minute)))
    url = p.tx("sessions")
    status, body, _ = await call("GET", url, p.as_emsp)
    assert (status, body["status_code"]) == (200, 2001)
    assert "date_from" in body["status_message"]
    status, body, headers = await call("GET", f"{url}?date_from=1970-01-01T00:00:00Z", p.as_emsp)
    assert (status, body["status_code"]) == (200, 1000)
    # Another eMSP's session (FR/OTH) is not shown; cc/pid compare case-insensitively.
    assert [s["id"] for s in body["data"]] == ["S1", "S3"]
    assert headers["X-Total-Count"] == "2" and "Link" not in headers
    status, body, headers = await call("GET", f"{url}?date_from={ts(2)}&limit=1", p.as_emsp)
    assert [s["id"] for s in body["data"]] == ["S3"] and headers["X-Total-Count"] == "1"
    status, body, headers = await call("GET", f"{url}?date_from={ts(0)}&date_to={ts(3)}&limit=1", p.as_emsp)
    assert [s["id"] for s in body["data"]] == ["S1"] and "Link" not in headers
    status, body, headers = await call("GET", f"{url}?date_from={ts(0)}&limit=1", p.as_emsp)
    assert [s["id"] for s in body["data"]] == ["S1"] and 'rel="next"' in headers["Link"]
    # The framework's pull sends date_from, so a full pull works against us.
    result = await p.emsp.pull(p.cpo_at_emsp.name, "sessions", full=True)
    assert (result.error, result.stored) == (None, 2)


async def test_charging_preferences(cluster):
    p = await pair(cluster)
    await p.cpo.publish("locations", Location.from_wire(location(evses=(
        ("E1", ("CHARGING_PREFERENCES_CAPABLE",), ("T1",)), ("E2", ("RFID_READER",), ("T1",))))))
    await p.cpo.publish("sessions", Session.from_wire(session("S1")))
    await p.cpo.publish("sessions", Session.from_wire(session("S2", evse="E2")))
    await p.cpo.publish("sessions", Session.from_wire(session("S3", tok=token("FR", "OTH"))))
    await p.cpo.publish("sessions", Session.from_wire(session("S4", status="COMPLETED", end_date_time=ts(60))))
    await p.cpo.publish("sessions", Session.from_wire(session("S5", location="LOC404")))
    base = p.tx("sessions")
    prefs = {"profile_type": "FAST", "departure_time": ts(120), "energy_need": 30}

    async def put(sid: str, body: object = prefs, raw: bytes | None = None):
        return await call("PUT", f"{base}/{sid}/charging_preferences", p.as_emsp, raw if raw is not None else body)

    # No hook: nothing can act on preferences.
    status, body, _ = await put("S1")
    assert (status, body["status_code"], body["data"]) == (200, 1000, "NOT_POSSIBLE")
    seen = []

    @p.cpo.on(SessionEvent.CHARGING_PREFERENCES)
    async def decide(sess, preferences, party):
        seen.append((sess.id, preferences.profile_type.value, float(preferences.energy_need), party.name))
        return ChargingPreferencesResponse.ACCEPTED

    status, body, _ = await put("s1")  # CiString id
    assert (status, body["status_code"], body["data"]) == (200, 1000, "ACCEPTED")
    assert seen == [("S1", "FAST", 30.0, "emsp")]
    # EVSE without CHARGING_PREFERENCES_CAPABLE, or not in a Location of ours: HTTP 404 + 2001.
    for sid in ("S2", "S5"):
        status, body, _ = await put(sid)
        assert (status, body["status_code"]) == (404, 2001), sid
        assert "CHARGING_PREFERENCES_CAPABLE" in body["status_message"]
    # Unknown, or another eMSP's: 404.
    for sid in ("NOPE", "S3"):
        status, body, _ = await put(sid)
        assert (status, body["status_code"]) == (404, 2000), sid
    # A finished session cannot take preferences; the hook is not asked.
    status, body, _ = await put("S4")
    assert (status, body["data"]) == (200, "NOT_POSSIBLE") and len(seen) == 1
    # Bad input.
    status, body, _ = await put("S1", {"profile_type": "fast"})
    assert (status, body["status_code"]) == (200, 2001) and "profile_type" in body["status_message"]
    status, body, _ = await put("S1", raw=b"{nope")
    assert (status, body["status_code"]) == (400, 2000)
    # A hook answering nonsense gives the documented default, never a 500.

    @p.cpo.on(SessionEvent.CHARGING_PREFERENCES)
    async def confused(sess, preferences, party):
        return "MAYBE"

    status, body, _ = await put("S1")
    assert (status, body["data"]) == (200, "NOT_POSSIBLE")


# --- Receiver -------------------------------------------------------------------------------


async def test_receiver_put_replaces_and_patch_appends(cluster):
    p = await pair(cluster)
    got = []

    @p.emsp.on(Received.SESSION)
    async def _received(sess, party):
        got.append((sess.id, len(sess.charging_periods or ()), party.name))

    url = p.rx("sessions", "NL", "CPO", "S1")
    status, body, _ = await call("PUT", url, p.as_cpo, session(periods=[period(0, 1), period(10, 2)]))
    assert (status, body["status_code"]) == (201, 1000)
    status, body, _ = await call("GET", url, p.as_cpo)
    assert (status, len(body["data"]["charging_periods"])) == (200, 2)
    # PATCH appends; the other named fields replace.
    status, body, _ = await call("PATCH", url, p.as_cpo, {"charging_periods": [period(20, 3)], "kwh": 6,
                                                          "last_updated": ts(1)})
    assert (status, body["status_code"]) == (200, 1000)
    doc = await p.doc_at_emsp("sessions", "S1")
    assert [cp["start_date_time"] for cp in doc["charging_periods"]] == [ts(0), ts(10), ts(20)]
    assert doc["kwh"] == 6
    # Without periods, or with an empty list, a PATCH leaves them alone.
    for n, patch in enumerate(({"total_cost": {"excl_vat": 1.5}}, {"charging_periods": []})):
        status, body, _ = await call("PATCH", url, p.as_cpo, {**patch, "last_updated": ts(2 + n)})
        assert (status, body["status_code"]) == (200, 1000)
        assert len((await p.doc_at_emsp("sessions", "S1"))["charging_periods"]) == 3
    assert (await p.doc_at_emsp("sessions", "S1"))["total_cost"] == {"excl_vat": 1.5}
    # The same PATCH retried (a lost response) does not add its period twice.
    again = {"charging_periods": [period(20, 3)], "kwh": 6, "last_updated": ts(4)}
    for _ in range(2):
        status, body, _ = await call("PATCH", url, p.as_cpo, again)
        assert (status, body["status_code"]) == (200, 1000)
    assert len((await p.doc_at_emsp("sessions", "S1"))["charging_periods"]) == 3
    # An older PATCH never overwrites a newer version.
    status, body, _ = await call("PATCH", url, p.as_cpo, {"kwh": 1, "last_updated": ts(0)})
    assert (status, body["status_code"]) == (200, 1000) and "older" in body["status_message"]
    assert (await p.doc_at_emsp("sessions", "S1"))["kwh"] == 6
    # PUT replaces the whole session: periods left out are deleted.
    status, body, _ = await call("PUT", url, p.as_cpo, session(updated=5, kwh=7, status="COMPLETED",
                                                               end_date_time=ts(60)))
    assert (status, body["status_code"]) == (200, 1000)
    doc = await p.doc_at_emsp("sessions", "S1")
    assert "charging_periods" not in doc and doc["status"] == "COMPLETED" and "total_cost" not in doc
    status, body, _ = await call("PUT", url, p.as_cpo, session(updated=6, periods=[period(0, 7)]))
    assert (await p.doc_at_emsp("sessions", "S1"))["charging_periods"] == [period(0, 7)]
    # Same version again, or an older one: no-op, no hook.
    status, body, _ = await call("PUT", url, p.as_cpo, session(updated=6, periods=[period(0, 7)]))
    assert (status, body["status_code"], body["status_message"]) == (200, 1000, "same version as stored")
    status, body, _ = await call("PUT", url, p.as_cpo, session(updated=1))
    assert "older" in body["status_message"]
    assert (await p.doc_at_emsp("sessions", "S1"))["charging_periods"] == [period(0, 7)]
    assert got == [("S1", 2, "nl-cpo"), ("S1", 3, "nl-cpo"), ("S1", 3, "nl-cpo"), ("S1", 3, "nl-cpo"),
                   ("S1", 3, "nl-cpo"), ("S1", 3, "nl-cpo"), ("S1", 0, "nl-cpo"), ("S1", 1, "nl-cpo")]


async def test_receiver_refusals_write_nothing(cluster):
    p = await pair(cluster)
    url = p.rx("sessions", "NL", "CPO", "S1")
    status, _, _ = await call("PUT", url, p.as_cpo, session(periods=[period(0, 1)]))
    assert status == 201
    before = await p.doc_at_emsp("sessions", "S1")
    cases = [
        # (method, url, body, raw, http, code, words in the message)
        ("PATCH", url, {"kwh": 9}, None, 200, 2001, "last_updated"),
        ("PATCH", url, {"id": "S2", "kwh": 9, "last_updated": ts(1)}, None, 200, 2001, "id"),
        ("PATCH", url, {"country_code": "BE", "last_updated": ts(1)}, None, 200, 2001, "country_code"),
        ("PATCH", url, {"charging_periods": [{"start_date_time": ts(5), "dimensions": []}], "last_updated": ts(1)},
         None, 200, 2001, "charging_periods.0"),
        ("PATCH", url, {"status": "DONE", "last_updated": ts(1)}, None, 200, 2001, "status"),
        ("PATCH", url, {"last_updated": "2026-02-02T09:01:00+01:00"}, None, 200, 2001, "last_updated"),
        ("PATCH", url, None, b"[1]", 200, 2001, "object"),
        ("PATCH", url, None, b"{", 400, 2000, "JSON"),
        ("PUT", url, session("S2", updated=1), None, 200, 2001, "id"),
        ("PUT", url, {**session(updated=1), "kwh": "9"}, None, 200, 2001, "kwh"),
        ("PUT", url, None, b"{", 400, 2000, "JSON"),
        # Not the caller's own cc/pid.
        ("PUT", p.rx("sessions", "DE", "EMS", "S1"), session(cc="DE", pid="EMS", updated=1), None, 404, 2000, "roles"),
        ("PATCH", p.rx("sessions", "DE", "EMS", "S1"), {"last_updated": ts(1)}, None, 404, 2000, "roles"),
    ]
    for method, u, body, raw, http, code, words in cases:
        status, resp, _ = await call(method, u, p.as_cpo, raw if raw is not None else body)
        assert (status, resp["status_code"]) == (http, code), (method, body, raw, resp)
        assert words.lower() in resp["status_message"].lower(), resp["status_message"]
    assert await p.doc_at_emsp("sessions", "S1") == before
    # A PATCH of an unknown session: 404, and nothing is created.
    u2 = p.rx("sessions", "NL", "CPO", "S9")
    status, resp, _ = await call("PATCH", u2, p.as_cpo, {"charging_periods": [period(0, 1)], "last_updated": ts(1)})
    assert (status, resp["status_code"]) == (404, 2000)
    status, resp, _ = await call("GET", u2, p.as_cpo)
    assert (status, resp["status_code"]) == (404, 2000)
    # POST and DELETE do not exist; bad tokens do not get in.
    for method in ("POST", "DELETE"):
        status, resp, _ = await call(method, url, p.as_cpo, session())
        assert (status, resp["status_code"]) == (405, 2000)
    status, resp, _ = await call("GET", url, "not-a-token")
    assert (status, resp["status_code"]) == (401, 2000)


async def test_lessons_session_patch_row(cluster):
    """lessons-from-peers.md, "Session PATCH": one peer replaced charging_periods
    on PATCH, took a PATCH without last_updated, and a path id differing from
    the body id. evroam appends, and refuses both with 2001."""
    p = await pair(cluster)
    url = p.rx("sessions", "NL", "CPO", "S1")
    await call("PUT", url, p.as_cpo, session(periods=[period(0, 1)]))
    await call("PATCH", url, p.as_cpo, {"charging_periods": [period(15, 2)], "last_updated": ts(1)})
    await call("PATCH", url, p.as_cpo, {"charging_periods": [period(30, 3), period(45, 4)], "last_updated": ts(2)})
    doc = await p.doc_at_emsp("sessions", "S1")
    assert [cp["dimensions"][0]["volume"] for cp in doc["charging_periods"]] == [1, 2, 3, 4]
    status, body, _ = await call("PATCH", url, p.as_cpo, {"charging_periods": [period(60, 5)]})
    assert (status, body["status_code"]) == (200, 2001)
    status, body, _ = await call("PATCH", url, p.as_cpo, {"id": "OTHER", "charging_periods": [period(60, 5)],
                                                          "last_updated": ts(3)})
    assert (status, body["status_code"]) == (200, 2001)
    assert len((await p.doc_at_emsp("sessions", "S1"))["charging_periods"]) == 4


async def test_spec_examples(cluster):
    p = await pair(cluster)
    first = load_example("session_example_1_simple_start.json")
    url = p.rx("sessions", "NL", "CPO", "101")
    # As printed, 2.2.1 rejects it: cdr_token lacks country_code and party_id (ocpi-notes H1).
    status, body, _ = await call("PUT", p.rx("sessions", "NL", "STK", "101"), p.as_cpo, first)
    assert (status, body["status_code"]) == (404, 2000)  # and NL/STK is not the CPO's role anyway
    status, body, _ = await call("PUT", url, p.as_cpo, {**first, "party_id": "CPO"})
    assert (status, body["status_code"]) == (200, 2001)
    assert "cdr_token.country_code" in body["status_message"]
    fixed = {**first, "party_id": "CPO", "cdr_token": {**first["cdr_token"], "country_code": "DE", "party_id": "EMS"}}
    status, body, _ = await call("PUT", url, p.as_cpo, fixed)
    assert (status, body["status_code"]) == (201, 1000)
    # The PATCH examples are dated 2019, before this session's last_updated: kept, not applied.
    patch_periods = load_example("session_patch_example_charging_period.json")
    status, body, _ = await call("PATCH", url, p.as_cpo, patch_periods)
    assert (status, body["status_code"]) == (200, 1000) and "older" in body["status_message"]
    # On a session last updated before them they apply, in their own order.
    url2 = p.rx("sessions", "NL", "CPO", "102")
    await call("PUT", url2, p.as_cpo, {**fixed, "id": "102", "last_updated": "2019-06-23T08:00:00Z"})
    status, body, _ = await call("PATCH", url2, p.as_cpo, load_example("session_patch_example_total_cost.json"))
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("PATCH", url2, p.as_cpo, patch_periods)
    doc = await p.doc_at_emsp("sessions", "102")
    assert doc["kwh"] == 15 and doc["total_cost"] == {"excl_vat": 0.8, "incl_vat": 0.88}
    assert doc["charging_periods"] == patch_periods["charging_periods"]
    second = load_example("session_example_2_short_finished.json")
    second = {**second, "country_code": "NL", "party_id": "CPO",
              "cdr_token": {**second["cdr_token"], "country_code": "DE", "party_id": "EMS"}}
    status, body, _ = await call("PUT", p.rx("sessions", "NL", "CPO", "101b"), p.as_cpo, {**second, "id": "101b"})
    assert (status, body["status_code"]) == (201, 1000)
    assert len((await p.doc_at_emsp("sessions", "101b"))["charging_periods"]) == 3


# --- CPO side: helpers, outbox ------------------------------------------------------------------


async def test_helpers_push_start_update_stop(cluster):
    p = await pair(cluster)
    s = await ops.start(p.cpo, session_id="S1", location_id="LOC1", evse_uid="E1", connector_id="1",
                        cdr_token=token(), currency="EUR", start_date_time=T0)
    assert s.status.value == "ACTIVE" and s.kwh == 0
    await wait_for(lambda: p.at_emsp("sessions", "S1"), what="the session at the eMSP")
    await ops.update(p.cpo, "S1", [period(0, 4.5)])
    await ops.update(p.cpo, "S1", [period(30, 5.5)], total_cost={"excl_vat": 2.5, "incl_vat": 2.75})
    done = await ops.stop(p.cpo, "S1", end_date_time=T0 + timedelta(hours=1))
    assert (done.status.value, float(done.kwh)) == ("COMPLETED", 10.0)

    async def completed() -> bool:
        doc = await p.doc_at_emsp("sessions", "S1")
        return doc is not None and doc["status"] == "COMPLETED"

    await wait_for(completed, what="COMPLETED at the eMSP")
    doc = await p.doc_at_emsp("sessions", "S1")
    assert [cp["start_date_time"] for cp in doc["charging_periods"]] == [ts(0), ts(30)]
    assert (doc["kwh"], doc["total_cost"], doc["end_date_time"]) == (10, {"excl_vat": 2.5, "incl_vat": 2.75}, ts(60))
    # Final means final.
    with pytest.raises(ops.SessionFinished):
        await ops.update(p.cpo, "S1", [period(61, 1)])
    with pytest.raises(ops.UnknownSession):
        await ops.update(p.cpo, "NOPE", [period(61, 1)])


async def test_outbox_coalescing_keeps_appended_periods(cluster):
    p = await pair(cluster)
    await ops.start(p.cpo, session_id="S1", location_id="LOC1", evse_uid="E1", connector_id="1",
                    cdr_token=token(), currency="EUR", start_date_time=T0)
    await wait_for(lambda: p.at_emsp("sessions", "S1"), what="the session at the eMSP")
    await wait_for(lambda: drained(p.cpo), what="an empty outbox")
    await p.cpo.delivery.stop()
    # Changes without periods still fold into one PATCH carrying the newest values.
    await ops.update(p.cpo, "S1", total_cost={"excl_vat": 1})
    await ops.update(p.cpo, "S1", total_cost={"excl_vat": 2})
    [(method, patch)] = await outbox_rows(p.cpo)
    assert (method, patch["total_cost"]) == ("PATCH", {"excl_vat": 2})
    # A PATCH that appends periods never folds: keeping the newest patch would
    # lose the first periods, so the pair becomes a PUT of the whole session.
    await ops.update(p.cpo, "S1", [period(0, 1)])
    assert [m for m, _ in await outbox_rows(p.cpo)] == ["PUT"]
    await ops.update(p.cpo, "S1", [period(15, 2)])
    assert [m for m, _ in await outbox_rows(p.cpo)] == ["PUT"]
    p.cpo.start_workers()
    await wait_for(lambda: drained(p.cpo), what="delivery")
    doc = await p.doc_at_emsp("sessions", "S1")
    assert [cp["start_date_time"] for cp in doc["charging_periods"]] == [ts(0), ts(15)]
    assert (doc["kwh"], doc["total_cost"]) == (3, {"excl_vat": 2})
    # One pending periods PATCH stays a PATCH with just the new periods, and
    # the next one after it (pending) turns it into a PUT.
    await p.cpo.delivery.stop()
    await ops.update(p.cpo, "S1", [period(30, 3)])
    [(method, patch)] = await outbox_rows(p.cpo)
    assert (method, [cp["start_date_time"] for cp in patch["charging_periods"]], patch["kwh"]) == ("PATCH", [ts(30)], 6)
    await ops.update(p.cpo, "S1", total_cost={"excl_vat": 3})
    assert [m for m, _ in await outbox_rows(p.cpo)] == ["PUT"]
    p.cpo.start_workers()
    await wait_for(lambda: drained(p.cpo), what="delivery")
    doc = await p.doc_at_emsp("sessions", "S1")
    assert [cp["start_date_time"] for cp in doc["charging_periods"]] == [ts(0), ts(15), ts(30)]


async def test_session_that_never_ends(cluster):
    """A day of half-hourly PATCHes (48 periods) and no end: every period
    arrives, in order, and no CDR is invented."""
    p = await pair(cluster)
    await ops.start(p.cpo, session_id="LONG", location_id="LOC1", evse_uid="E1", connector_id="1",
                    cdr_token=token(), currency="EUR", start_date_time=T0)
    for i in range(48):
        await ops.update(p.cpo, "LONG", [period(30 * i, 0.5)])

    async def all_there() -> bool:
        doc = await p.doc_at_emsp("sessions", "LONG")
        return doc is not None and len(doc.get("charging_periods") or ()) == 48

    await wait_for(all_there, timeout=30, what="48 periods at the eMSP")
    await wait_for(lambda: drained(p.cpo), what="delivery")
    doc = await p.doc_at_emsp("sessions", "LONG")
    assert [cp["start_date_time"] for cp in doc["charging_periods"]] == [ts(30 * i) for i in range(48)]
    assert (doc["status"], doc["kwh"], "end_date_time" in doc) == ("ACTIVE", 24, False)
    # No CDR anywhere, and none can be made for a session that has not ended.
    for node in (p.cpo, p.emsp):
        async with node.engine.connect() as conn:
            assert (await objects.page(conn, "cdrs", None, offset=0, limit=10))[1] == 0
    loc = Location.from_wire(location())
    with pytest.raises(CdrBuildError):
        await ops.issue_cdr(p.cpo, "LONG", Tariff.from_wire(tariff()), loc)


async def test_session_at_an_evse_the_emsp_has_not_synced(cluster):
    async def publish_before_registration(cpo: Node) -> None:
        # Published before the eMSP registered: it was never pushed there.
        await cpo.publish("locations", Location.from_wire(location("LOC9", evses=(("E9", (), ("T1",)),))))

    p = await pair(cluster, before=publish_before_registration)
    await ops.start(p.cpo, session_id="S9", location_id="LOC9", evse_uid="E9", connector_id="1",
                    cdr_token=token(), currency="EUR", start_date_time=T0)
    await wait_for(lambda: p.at_emsp("sessions", "S9"), what="the session at the eMSP")
    sess = Session.from_wire((await p.at_emsp("sessions", "S9")).data)
    async with p.emsp.engine.connect() as conn:
        assert not await knows_evse(conn, p.cpo_at_emsp.id, sess)
    result = await p.emsp.pull(p.cpo_at_emsp.name, "locations")
    assert (result.error, result.stored) == (None, 1)
    async with p.emsp.engine.connect() as conn:
        assert await knows_evse(conn, p.cpo_at_emsp.id, sess)
