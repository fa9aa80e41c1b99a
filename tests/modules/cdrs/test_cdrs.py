"""CDRs between a CPO and an eMSP (mod_cdrs.asciidoc): POST with a Location
header, immutability, the caller-only Sender list, and the eMSP's pricing
check (ACCEPTED / DISPUTED) of what it receives."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import typer
from typer.testing import CliRunner

from evroam.cli_cdrs import register
from evroam.ocpi.cdrs import CDR
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from evroam.pricing import build_cdr, credit_cdr
from evroam.modules.events import Received
from evroam.modules.sessions import owner as ops
from tests.charging import T0, location, period, session, tariff, token, ts
from tests.examples import load_example
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.pair import Pair, pair
from tests.partners import drained

ADMIN = "admin-token-for-tests-0123456789"


def make_cdr(sid: str = "S1", *, tariff_doc: dict | None = None, loc: dict | None = None, periods: list | None = None,
             end: float = 100, tok: dict | None = None, **session_extra: object) -> CDR:
    """A CDR as our CPO side builds it (the pricing builder), for hand-made POSTs."""
    s = Session.from_wire(session(sid, status="COMPLETED", end_date_time=ts(end), tok=tok,
                                  periods=periods if periods is not None else [period(0, 20), period(60, parking_h=0.6667)],
                                  **session_extra))
    loc_model = Location.from_wire(loc or location())
    cdr, _ = build_cdr(s, Tariff.from_wire(tariff_doc or tariff()), ops.cdr_location(loc_model, s.evse_uid, "1"),
                       time_zone=loc_model.time_zone)
    return cdr


async def verdict_at_emsp(p: Pair, cdr_id: str) -> tuple[str | None, str | None]:
    stored = await p.at_emsp("cdrs", cdr_id)
    assert stored is not None, f"CDR {cdr_id} not at the eMSP"
    return stored.status, stored.note


async def post(p: Pair, body: object = None, raw: bytes | None = None):
    return await call("POST", p.rx("cdrs"), p.as_cpo, raw if raw is not None else body)


async def publish_basics(p: Pair, loc: dict | None = None, tariffs: tuple[dict, ...] | None = None) -> None:
    """Our Tariff and Location at the CPO, pushed to (and waited for at) the eMSP."""
    loc = loc or location()
    for t in tariffs or (tariff(),):
        await p.cpo.publish("tariffs", Tariff.from_wire(t))
    await p.cpo.publish("locations", Location.from_wire(loc))
    await wait_for(lambda: p.at_emsp("locations", loc["id"]), what="the Location at the eMSP")
    for t in tariffs or (tariff(),):
        await wait_for(lambda t=t: p.at_emsp("tariffs", t["id"]), what="the Tariff at the eMSP")


async def run_session(p: Pair, sid: str, periods: list[dict], end: float, **start: object) -> Session:
    """Drive one of the CPO's sessions: start, one update per period, stop."""
    await ops.start(p.cpo, session_id=sid, location_id=start.pop("location_id", "LOC1"), evse_uid="E1",
                    connector_id="1", cdr_token=token(), currency="EUR",
                    start_date_time=start.pop("start_date_time", T0))
    for cp in periods:
        await ops.update(p.cpo, sid, [cp])
    return await ops.stop(p.cpo, sid, end_date_time=T0 + timedelta(minutes=end))


# --- Receiver ----------------------------------------------------------------------------------


async def test_post_answers_a_location_and_cdrs_never_change(cluster):
    p = await pair(cluster)
    got = []

    @p.emsp.on(Received.CDR)
    async def _received(cdr, party):
        got.append((cdr.id, party.name))

    cdr = make_cdr()
    wire = json.loads(cdr.to_json_bytes())
    status, body, headers = await post(p, wire)
    assert (status, body["status_code"]) == (201, 1000)
    where = headers["Location"]
    assert where == f"{p.emsp.config.public_url}/ocpi/2.2.1/receiver/cdrs/NL/CPO/S1"
    status, body, _ = await call("GET", where, p.as_cpo)
    assert (status, body["status_code"], body["data"]) == (200, 1000, wire)
    # Never changed: a different CDR under the same id is refused ...
    status, body, _ = await post(p, {**wire, "total_cost": {"excl_vat": 1}})
    assert (status, body["status_code"]) == (200, 2001) and "received already" in body["status_message"]
    # ... while the very same CDR again (a retry whose answer was lost) is
    # success, without a second hook call.
    status, body, headers = await post(p, wire)
    assert (status, body["status_code"], headers["Location"]) == (200, 1000, where)
    status, body, _ = await call("GET", where, p.as_cpo)
    assert body["data"] == wire
    # PUT, PATCH and DELETE do not exist, on the CDR or on the collection.
    for method, url in (("PUT", where), ("PATCH", where), ("DELETE", where), ("PUT", p.rx("cdrs")),
                        ("DELETE", p.rx("cdrs"))):
        status, body, _ = await call(method, url, p.as_cpo, {"last_updated": ts(1)})
        assert (status, body["status_code"]) == (405, 2000), (method, url)
    # Refusals write nothing.
    bad_total = {k: v for k, v in wire.items() if k != "total_cost"}
    cases = [
        ({**wire, "id": "S2", "country_code": "DE", "party_id": "EMS"}, None, 200, 2001, "roles"),
        ({**bad_total, "id": "S3"}, None, 200, 2001, "total_cost"),
        ({**wire, "id": "S4", "total_cost": {"excl_vat": -8}}, None, 200, 2001, "total_cost"),
        ({**wire, "id": "S5", "charging_periods": []}, None, 200, 2001, "charging_periods"),
        (None, b"{", 400, 2000, "JSON"),
    ]
    for doc, raw, http, code, words in cases:
        status, body, _ = await post(p, doc, raw=raw)
        assert (status, body["status_code"]) == (http, code), body
        assert words.lower() in body["status_message"].lower(), body["status_message"]
    for cdr_id in ("S2", "S3", "S4", "S5"):
        assert await p.at_emsp("cdrs", cdr_id) is None
    status, body, _ = await call("GET", p.rx("cdrs", "NL", "CPO", "NOPE"), p.as_cpo)
    assert (status, body["status_code"]) == (404, 2000)
    status, body, _ = await call("GET", p.rx("cdrs", "DE", "EMS", "S1"), p.as_cpo)
    assert (status, body["status_code"]) == (404, 2000)
    assert got == [("S1", "nl-cpo")]
    # The eMSP holds no Location for it: priced in UTC, and it says so.
    verdict, note = await verdict_at_emsp(p, "S1")
    assert verdict == "ACCEPTED" and "priced in UTC" in note


async def test_sender_list_shows_only_the_callers_cdrs(cluster):
    p = await pair(cluster)
    for cdr_id, tok in (("C1", token()), ("C2", token("FR", "OTH")), ("C3", token("de", "ems"))):
        await p.cpo.publish("cdrs", make_cdr(cdr_id, tok=tok))
    url = p.tx("cdrs")
    status, body, headers = await call("GET", url, p.as_emsp)
    assert (status, body["status_code"]) == (200, 1000)
    assert [c["id"] for c in body["data"]] == ["C1", "C3"] and headers["X-Total-Count"] == "2"
    status, body, headers = await call("GET", f"{url}?limit=1", p.as_emsp)
    assert [c["id"] for c in body["data"]] == ["C1"] and 'rel="next"' in headers["Link"]
    status, body, _ = await call("GET", f"{url}?offset=1&limit=1", p.as_emsp)
    assert [c["id"] for c in body["data"]] == ["C3"]
    # Pushed too: POSTed only to the eMSP concerned.
    await wait_for(lambda: drained(p.cpo), what="delivery")
    assert [await p.at_emsp("cdrs", i) is not None for i in ("C1", "C2", "C3")] == [True, False, True]
    # A pull of what was pushed already is harmless.
    result = await p.emsp.pull(p.cpo_at_emsp.name, "cdrs", full=True)
    assert (result.error, result.stored) == (None, 2)


# --- The CPO issues, the eMSP checks ----------------------------------------------------------------


async def test_several_price_components_priced_end_to_end(cluster):
    p = await pair(cluster)
    await publish_basics(p)
    # 1 h charging 20 kWh, then 40 min parking (billed 45 with the 900 s step):
    # FLAT 0.50 + ENERGY 5.00 + TIME 1.00 + PARKING 1.50 = 8.00 excl.;
    # 0.60 + 5.50 + 1.10 + 1.80 = 9.00 incl. (VAT 20 / 10 / 10 / 20 %).
    done = await run_session(p, "S1", [period(0, 20), period(60, parking_h=0.6667)], end=100)
    loc = await ops.our_location(p.cpo, done)
    tariffs = await ops.connector_tariffs(p.cpo, loc, "E1", "1")
    cdr = await ops.issue_cdr(p.cpo, done, tariffs, loc)
    assert (cdr.total_cost.excl_vat, cdr.total_cost.incl_vat) == (Decimal(8), Decimal(9))
    assert (cdr.total_energy, cdr.total_parking_time) == (Decimal(20), Decimal("0.6667"))
    assert [t.id for t in cdr.tariffs] == ["T1"] and cdr.session_id == "S1"
    await wait_for(lambda: p.at_emsp("cdrs", "S1"), what="the CDR at the eMSP")
    verdict, note = await verdict_at_emsp(p, "S1")
    assert verdict == "ACCEPTED", note
    assert "UTC" not in (note or "")  # the Location the eMSP received gave the zone
    assert json.loads((await p.at_emsp("cdrs", "S1")).data) == json.loads(cdr.to_json_bytes())
    with pytest.raises(ops.CdrExists):
        await ops.issue_cdr(p.cpo, done, tariffs, loc)


async def test_zero_kwh_cdr(cluster):
    """Connected 30 min, no energy: a start fee and parking, legal in a CDR."""
    p = await pair(cluster)
    await publish_basics(p)
    done = await run_session(p, "Z1", [period(0, 0)], end=30)
    loc = await ops.our_location(p.cpo, done)
    cdr = await ops.issue_cdr(p.cpo, done, Tariff.from_wire(tariff()), loc)
    assert (cdr.total_energy, cdr.total_cost.excl_vat, cdr.total_cost.incl_vat) == (0, Decimal("1.5"), Decimal("1.8"))
    await wait_for(lambda: p.at_emsp("cdrs", "Z1"), what="the CDR at the eMSP")
    verdict, note = await verdict_at_emsp(p, "Z1")
    assert verdict == "ACCEPTED", note
    assert (json.loads((await p.at_emsp("cdrs", "Z1")).data))["total_energy"] == 0


async def test_tampered_total_is_disputed_with_a_reason(cluster):
    p = await pair(cluster)
    await publish_basics(p)
    wire = json.loads(make_cdr("X1").to_json_bytes())
    wire["total_cost"] = {"excl_vat": 9.0, "incl_vat": 10.0}
    status, body, _ = await post(p, wire)
    assert (status, body["status_code"]) == (201, 1000)  # stored, and flagged
    verdict, note = await verdict_at_emsp(p, "X1")
    assert verdict == "DISPUTED"
    assert "total_cost.excl_vat: CDR says 9" in note and "tariff gives 8" in note
    assert "total_cost.incl_vat" in note


async def test_time_zone_comes_from_the_received_location(cluster):
    """Night rate until 07:00 local. 06:15–06:45 UTC is 07:15–07:45 in
    Amsterdam (winter): day rate. Priced in UTC it would be the night rate."""
    p = await pair(cluster)
    day_night = tariff("TN", elements=[
        {"price_components": [{"type": "ENERGY", "price": 0.10, "step_size": 1}],
         "restrictions": {"start_time": "00:00", "end_time": "07:00"}},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]}])
    await publish_basics(p, location(evses=(("E1", (), ("TN",)),)), (day_night,))
    for sid, loc in (("A1", location(evses=(("E1", (), ("TN",)),))),
                     ("B1", location("LOCB", evses=(("E1", (), ("TN",)),)))):  # LOCB never reaches the eMSP
        done = await run_session(p, sid, [period(-165, 10)], end=-135, start_date_time=T0 - timedelta(minutes=165),
                                 location_id=loc["id"])
        cdr = await ops.issue_cdr(p.cpo, done, Tariff.from_wire(day_night), Location.from_wire(loc))
        assert cdr.total_cost.excl_vat == Decimal(3)
    await wait_for(lambda: p.at_emsp("cdrs", "B1"), what="both CDRs at the eMSP")
    assert (await verdict_at_emsp(p, "A1"))[0] == "ACCEPTED"
    verdict, note = await verdict_at_emsp(p, "B1")
    assert verdict == "DISPUTED"
    assert "priced in UTC: location LOCB not received" in note and "tariff gives 1" in note


async def test_without_tariffs_in_the_cdr_the_connectors_tariff_is_used(cluster):
    p = await pair(cluster)
    await publish_basics(p)
    wire = json.loads(make_cdr("N1").to_json_bytes())
    del wire["tariffs"]
    status, _, _ = await post(p, wire)
    assert status == 201
    verdict, note = await verdict_at_emsp(p, "N1")
    assert verdict == "ACCEPTED", note
    # No tariff_id in the periods either: the connector's tariff_ids decide.
    anonymous = {**wire, "id": "N2",
                 "charging_periods": [{k: v for k, v in cp.items() if k != "tariff_id"} for cp in wire["charging_periods"]]}
    await post(p, anonymous)
    verdict, note = await verdict_at_emsp(p, "N2")
    assert verdict == "ACCEPTED" and "ours for this connector" in note
    # Nothing to price with (a connector we do not know): stored, but not accepted.
    unknown = {**anonymous, "id": "N3", "cdr_location": {**wire["cdr_location"], "id": "LOC404"}}
    await post(p, unknown)
    verdict, note = await verdict_at_emsp(p, "N3")
    assert verdict == "DISPUTED" and note.startswith("cannot verify")


async def test_credit_cdr_is_stored_like_any_other(cluster):
    p = await pair(cluster)
    original = make_cdr("O1")
    credit = credit_cdr(original)
    assert (credit.id, credit.credit, credit.credit_reference_id) == ("O1-C", True, "O1")
    for cdr in (original, credit):
        status, body, headers = await post(p, json.loads(cdr.to_json_bytes()))
        assert (status, body["status_code"]) == (201, 1000)
    assert headers["Location"].endswith("/cdrs/NL/CPO/O1-C")
    stored = json.loads((await p.at_emsp("cdrs", "O1-C")).data)
    assert (stored["credit"], stored["credit_reference_id"], stored["total_cost"]) == (True, "O1", {"excl_vat": -8, "incl_vat": -9})
    assert (await verdict_at_emsp(p, "O1-C"))[0] == "ACCEPTED"
    # A credit for a CDR we never got is still taken, with a note.
    orphan = credit_cdr(make_cdr("O2"))
    await post(p, json.loads(orphan.to_json_bytes()))
    verdict, note = await verdict_at_emsp(p, "O2-C")
    assert verdict == "ACCEPTED" and "never received" in note


async def test_spec_example_cdr(cluster):
    p = await pair(cluster)
    example = load_example("cdr_example.json")
    status, body, _ = await post(p, {**example, "party_id": "CPO", "country_code": "NL"})
    # As printed, 2.2.1 rejects it: cdr_token lacks country_code and party_id (ocpi-notes H1).
    assert (status, body["status_code"]) == (200, 2001) and "cdr_token.country_code" in body["status_message"]
    fixed = {**example, "country_code": "NL", "party_id": "CPO",
             "cdr_token": {**example["cdr_token"], "country_code": "DE", "party_id": "EMS"},
             "tariffs": [{**t, "country_code": "NL", "party_id": "CPO"} for t in example["tariffs"]]}
    status, body, headers = await post(p, fixed)
    assert (status, body["status_code"]) == (201, 1000)
    # TIME 2.00/h @10 %, step 300 s, 1.973 h → 120 min: 4.00 / 4.40, as the CDR says.
    verdict, note = await verdict_at_emsp(p, "12345")
    assert verdict == "ACCEPTED", note
    status, body, _ = await call("GET", headers["Location"], p.as_cpo)
    assert body["data"]["total_cost"] == {"excl_vat": 4, "incl_vat": 4.4}


# --- CLI and admin ----------------------------------------------------------------------------------


async def test_cli_lists_received_cdrs_with_their_verdict(cluster):
    p = await pair(cluster)
    await post(p, json.loads(make_cdr("GOOD").to_json_bytes()))
    bad = json.loads(make_cdr("BAD").to_json_bytes())
    bad["total_cost"] = {"excl_vat": 80, "incl_vat": 90}
    await post(p, bad)
    p.emsp.config.save()
    app = typer.Typer()
    register(app)
    home = str(p.emsp.config.home)

    def cli(*args: str):
        # In a thread: the command runs its own event loop.
        return asyncio.to_thread(CliRunner().invoke, app, ["cdrs", "list", "--home", home, *args],
                                 env={"COLUMNS": "300"})

    result = await cli("--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["id"], r["status"], r["partner"]) for r in rows] == [("BAD", "DISPUTED", "nl-cpo"),
                                                                     ("GOOD", "ACCEPTED", "nl-cpo")]
    result = await cli("--status", "disputed", "--json")
    [row] = json.loads(result.output)
    assert row["id"] == "BAD" and "total_cost.excl_vat: CDR says 80" in row["reason"]
    result = await cli("--status", "ACCEPTED")
    assert result.exit_code == 0 and "GOOD" in result.output and "BAD" not in result.output
    result = await cli()
    assert "DISPUTED" in result.output and "ACCEPTED" in result.output and "Received CDRs" in result.output
    result = await cli("--status", "maybe")
    assert result.exit_code == 2


async def test_admin_routes_drive_a_session_to_its_cdr(cluster):
    p = await pair(cluster, admin_token=ADMIN)
    await publish_basics(p)
    base = f"{p.cpo.config.public_url}/admin"

    async def admin(method: str, path: str, body: object = None):
        import aiohttp

        async with aiohttp.ClientSession() as s, s.request(
                method, base + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            return r.status, await r.json(content_type=None)

    status, body = await admin("POST", "/sessions", {"id": "AD1", "location_id": "LOC1", "evse_uid": "E1",
                                                     "connector_id": "1", "cdr_token": token(), "currency": "EUR",
                                                     "start_date_time": ts(0)})
    assert (status, body["data"]["status"], body["data"]["id"]) == (201, "ACTIVE", "AD1")
    status, body = await admin("POST", "/sessions", {"location_id": "LOC1"})
    assert (status, body["status_code"]) == (400, 2001) and "cdr_token" in body["status_message"]
    status, body = await admin("PATCH", "/sessions/AD1", {"charging_periods": [period(0, 20)]})
    assert (status, body["data"]["kwh"]) == (200, 20)
    status, body = await admin("PATCH", "/sessions/AD1", {"charging_periods": [period(60, parking_h=0.6667)]})
    assert (status, len(body["data"]["charging_periods"])) == (200, 2)
    status, body = await admin("PATCH", "/sessions/NOPE", {"charging_periods": [period(0, 1)]})
    assert (status, body["status_code"]) == (404, 2000)
    status, body = await admin("POST", "/sessions/AD1/cdr")
    assert status == 409 and "COMPLETED" in body["status_message"]  # not stopped yet
    status, body = await admin("POST", "/sessions/AD1/stop", {"end_date_time": ts(100)})
    assert (status, body["data"]["status"], body["data"]["end_date_time"]) == (200, "COMPLETED", ts(100))
    status, body = await admin("PATCH", "/sessions/AD1", {"charging_periods": [period(101, 1)]})
    assert status == 409
    status, body = await admin("POST", "/sessions/AD1/cdr")
    assert (status, body["data"]["total_cost"]) == (201, {"excl_vat": 8, "incl_vat": 9})
    status, body = await admin("POST", "/sessions/AD1/cdr")
    assert status == 409 and "Credit CDR" in body["status_message"]

    async def arrived() -> bool:
        doc = await p.doc_at_emsp("sessions", "AD1")
        return doc is not None and doc["status"] == "COMPLETED" and await p.at_emsp("cdrs", "AD1") is not None

    await wait_for(arrived, what="the session and its CDR at the eMSP")
    assert len((await p.doc_at_emsp("sessions", "AD1"))["charging_periods"]) == 2
    assert (await verdict_at_emsp(p, "AD1"))[0] == "ACCEPTED"


async def test_pulled_cdrs_are_checked_like_pushed_ones(cluster):
    """The eMSP checks every CDR it receives, whether pushed or pulled."""
    from evroam.store import objects as repo
    from evroam.store.objects import ObjectKey as Key
    from tests.partners import EMSP

    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO")], run_workers=False)  # nothing is pushed
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(url, token_a)
    await cpo.publish("tariffs", Tariff.from_wire(tariff()))
    await cpo.publish("locations", Location.from_wire(location()))
    good = make_cdr("S1")
    bad = CDR.from_wire({**json.loads(good.to_json_bytes()), "id": "S2",
                         "total_cost": {"excl_vat": 99, "incl_vat": 100}})
    await cpo.publish("cdrs", good)
    await cpo.publish("cdrs", bad)
    for module in ("locations", "tariffs", "cdrs"):
        result = await emsp.pull(party.name, module, full=True)
        assert result.error is None and result.invalid == []
    async with emsp.engine.connect() as conn:
        s1 = await repo.get(conn, Key("cdrs", party.id, "NL", "CPO", "S1"))
        s2 = await repo.get(conn, Key("cdrs", party.id, "NL", "CPO", "S2"))
    assert s1.status == "ACCEPTED"
    assert s2.status == "DISPUTED" and "total_cost.excl_vat" in s2.note
    # A second pull does not judge them again (and keeps the verdicts).
    await emsp.pull(party.name, "cdrs", full=True)
    async with emsp.engine.connect() as conn:
        assert (await repo.get(conn, Key("cdrs", party.id, "NL", "CPO", "S2"))).status == "DISPUTED"
