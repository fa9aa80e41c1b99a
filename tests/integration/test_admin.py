"""The admin REST API: token, upserts of our own objects reaching partners,
and reads of what partners sent (admin/)."""

from __future__ import annotations

import json

import aiohttp
import sqlalchemy as sa
from structlog.testing import capture_logs

from evroam.ocpi.tariffs import Tariff
from evroam.store import objects
from evroam.store.objects import ObjectKey
from evroam.store.tables import outbox
from tests.builders import location, tariff
from tests.nodes import wait_for
from tests.pair import ADMIN_TOKEN, admin_pair
from tests.partners import CPO, received


async def admin(node, method: str, path: str, *, token: str | None = ADMIN_TOKEN, body: object = None,
                raw: bytes | None = None, scheme: str = "Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    kw: dict = {}
    if raw is not None:
        kw["data"] = raw
        headers["Content-Type"] = "application/json"
    elif body is not None:
        kw["json"] = body
    url = path if path.startswith("http") else f"{node.config.public_url}/admin{path}"
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=headers, **kw) as r:
        text = await r.text()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = text
        return r.status, doc, r.headers


async def test_disabled_without_a_token(cluster, monkeypatch, tmp_path):
    monkeypatch.delenv("EVROAM_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("EVROAM_ADMIN_TOKEN_FILE", raising=False)
    with capture_logs() as logs:
        off = await cluster.node("off", CPO)
    assert any(e["event"] == "admin.disabled" for e in logs)
    for path in ("/partners", "/docs", "/openapi.json"):
        status, _, _ = await admin(off, "GET", path)
        assert status == 404, path
    # A token file (e.g. a mounted secret) enables it; surrounding whitespace is not part of it.
    secret = tmp_path / "admin-token"
    secret.write_text(f"  {ADMIN_TOKEN}\n")
    monkeypatch.setenv("EVROAM_ADMIN_TOKEN_FILE", str(secret))
    on = await cluster.node("on", CPO)
    status, body, _ = await admin(on, "GET", "/partners")
    assert (status, body["status_code"], body["data"]) == (200, 1000, [])
    # The environment variable wins over the file.
    monkeypatch.setenv("EVROAM_ADMIN_TOKEN", "env-token-" + "y" * 20)
    env = await cluster.node("env", CPO)
    assert (await admin(env, "GET", "/partners"))[0] == 401
    assert (await admin(env, "GET", "/partners", token="env-token-" + "y" * 20))[0] == 200


async def test_token_is_required_and_checked(cluster):
    cpo = await cluster.node("cpo", CPO, admin_token=ADMIN_TOKEN)
    for kw in ({"token": None}, {"token": "wrong"}, {"token": ADMIN_TOKEN[:-1]}, {"token": ADMIN_TOKEN, "scheme": "Token"}):
        status, body, headers = await admin(cpo, "GET", "/partners", **kw)
        assert (status, body["status_code"]) == (401, 2000), kw
        assert "admin token" in body["status_message"] and headers["WWW-Authenticate"] == "Bearer"
    # Writes are refused the same way, and write nothing.
    status, _, _ = await admin(cpo, "PUT", "/tariffs/T1", token="wrong", body=tariff())
    assert status == 401
    assert await received(cpo, 0, "tariffs", "T1") is None
    status, body, _ = await admin(cpo, "GET", "/partners")
    assert (status, body["status_code"]) == (200, 1000)
    # Unknown admin routes are envelope-shaped 404s.
    status, body, _ = await admin(cpo, "GET", "/nothing-here")
    assert (status, body["status_code"]) == (404, 2000)


async def test_openapi_docs(cluster):
    cpo = await cluster.node("cpo", CPO, admin_token=ADMIN_TOKEN)
    status, schema, _ = await admin(cpo, "GET", "/openapi.json", token=None)
    assert status == 200
    paths = set(schema["paths"])
    assert {"/locations/{location_id}", "/locations/{location_id}/evses/{evse_uid}/status", "/tariffs/{tariff_id}",
            "/tokens/{token_uid}", "/cdrs/{cdr_id}", "/partners", "/partners/{name}", "/partners/{name}/{module}",
            "/received/{module}/{country_code}/{party_id}/{object_id}"} <= paths
    assert "/sessions" in paths  # admin/sessions.py is included
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # Bodies are parsed by hand, yet documented with the OCPI object schemas.
    put = schema["paths"]["/locations/{location_id}"]["put"]
    ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/Location"
    assert "evses" in schema["components"]["schemas"]["Location"]["properties"]
    assert "EVSE" in schema["components"]["schemas"]  # nested definitions resolve
    assert schema["servers"] == [{"url": "/admin"}]
    status, html, headers = await admin(cpo, "GET", "/docs", token=None)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "/admin/openapi.json" in html


async def test_upserts_reach_the_partner(cluster):
    cpo, emsp, party = await admin_pair(cluster)
    status, body, _ = await admin(cpo, "PUT", "/tariffs/T1", body=tariff())
    assert (status, body["status_code"], body["data"]["id"]) == (201, 1000, "T1")
    await wait_for(lambda: received(emsp, party.id, "tariffs", "T1"), what="tariff pushed to the eMSP")
    status, body, _ = await admin(cpo, "PUT", "/tariffs/T1", body=tariff(price=0.31, updated="2026-01-02T00:00:00Z"))
    assert (status, body["status_code"]) == (200, 1000)

    async def price_is_new() -> bool:
        doc = await received(emsp, party.id, "tariffs", "T1")
        return doc["elements"][0]["price_components"][0]["price"] == 0.31

    await wait_for(price_is_new, what="updated tariff at the eMSP")
    # The same document again changes nothing and queues nothing.
    status, body, _ = await admin(cpo, "PUT", "/tariffs/T1", body=tariff(price=0.31, updated="2026-01-02T00:00:00Z"))
    assert (status, body["status_code"], body["status_message"]) == (200, 1000, "unchanged")
    async with cpo.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(outbox))).scalar() == 0
    # An older version would be ignored by receivers: refused, not stored.
    status, body, _ = await admin(cpo, "PUT", "/tariffs/T1", body=tariff(price=0.1, updated="2025-01-01T00:00:00Z"))
    assert (status, body["status_code"]) == (409, 2000) and "last_updated" in body["status_message"]

    # A Location, then an EVSE status change that goes out as a PATCH of that EVSE.
    status, body, _ = await admin(cpo, "PUT", "/locations/L1", body=location("L1"))
    assert status == 201
    await wait_for(lambda: received(emsp, party.id, "locations", "L1"), what="location pushed to the eMSP")
    status, body, _ = await admin(cpo, "PUT", "/locations/L1/evses/e1/status",
                                  body={"status": "CHARGING", "last_updated": "2026-01-03T00:00:00Z"})
    assert (status, body["status_code"], body["data"]["uid"], body["data"]["status"]) == (200, 1000, "E1", "CHARGING")

    async def evse_charging() -> bool:
        doc = await received(emsp, party.id, "locations", "L1")
        return doc["evses"][0]["status"] == "CHARGING" and doc["last_updated"] == "2026-01-03T00:00:00Z"

    await wait_for(evse_charging, what="EVSE status at the eMSP")
    await cpo.call_log.flush()
    from evroam.store import calllog

    rows = await calllog.recent(cpo.engine, limit=50)
    assert any(r["method"] == "PATCH" and r["url"].endswith("/NL/CPO/L1/E1") and r["http_status"] == 200 for r in rows)
    status, body, _ = await admin(cpo, "PUT", "/locations/L1/evses/E9/status", body={"status": "CHARGING"})
    assert (status, body["status_code"]) == (404, 2000)
    status, body, _ = await admin(cpo, "PUT", "/locations/L9/evses/E1/status", body={"status": "CHARGING"})
    assert (status, body["status_code"]) == (404, 2000)
    status, body, _ = await admin(cpo, "PUT", "/locations/L1/evses/E1/status", body={"status": "BUSY"})
    assert (status, body["status_code"]) == (400, 2001) and "status" in body["status_message"]


async def test_bad_input_is_400_and_writes_nothing(cluster):
    cpo, emsp, party = await admin_pair(cluster)
    bad = tariff("T2")
    bad["elements"][0]["price_components"][0]["type"] = "energy"
    cases = [
        ("/tariffs/T2", {"body": bad}, 2001, "elements.0.price_components.0.type"),
        ("/tariffs/T2", {"raw": b"{"}, 2000, "not valid JSON"),
        ("/tariffs/T2", {"body": [tariff("T2")]}, 2001, "body"),
        ("/tariffs/T2", {"body": tariff("T3")}, 2001, "id: 'T3' in the body differs"),
        ("/tariffs/T2", {"body": tariff("T2", cc="DE", pid="EMS")}, 2001, "country_code/party_id"),
        ("/tokens/U1?type=NFC", {"body": {}}, 2001, "type"),
        ("/partners/emsp/tariffs?limit=0", {}, 2001, "limit"),
    ]
    for path, kw, code, text in cases:
        method = "GET" if path.startswith("/partners") else "PUT"
        status, body, _ = await admin(cpo, method, path, **kw)
        assert (status, body["status_code"]) == (400, code), (path, body)
        assert text in body["status_message"], (path, body["status_message"])
    async with cpo.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(objects.objects))).scalar() == 0
    # A CDR never changes once stored (its Location is ours: issue 8, §4.7).
    status, _, _ = await admin(cpo, "PUT", "/locations/L1", body=location("L1"))
    assert status == 201
    status, _, _ = await admin(cpo, "PUT", "/cdrs/C1", body=cdr())
    assert status == 201
    status, body, _ = await admin(cpo, "PUT", "/cdrs/C1", body=cdr())
    assert (status, body["status_message"]) == (200, "unchanged")
    status, body, _ = await admin(cpo, "PUT", "/cdrs/C1", body=cdr(total=9.0))
    assert (status, body["status_code"]) == (409, 2000) and "credit CDR" in body["status_message"]


def cdr(cid: str = "C1", total: float = 2.5) -> dict:
    return {
        "country_code": "NL", "party_id": "CPO", "id": cid, "start_date_time": "2026-01-01T10:00:00Z",
        "end_date_time": "2026-01-01T11:00:00Z",
        "cdr_token": {"country_code": "DE", "party_id": "EMS", "uid": "U1", "type": "RFID", "contract_id": "DE-EMS-1"},
        "auth_method": "WHITELIST",
        "cdr_location": {"id": "L1", "address": "Main St 1", "city": "Utrecht", "country": "NLD",
                         "coordinates": {"latitude": "52.090000", "longitude": "5.120000"}, "evse_uid": "E1",
                         "evse_id": "NL*CPO*E1", "connector_id": "1", "connector_standard": "IEC_62196_T2",
                         "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
        "currency": "EUR", "charging_periods": [{"start_date_time": "2026-01-01T10:00:00Z",
                                                 "dimensions": [{"type": "ENERGY", "volume": 10}]}],
        "total_cost": {"excl_vat": total}, "total_energy": 10, "total_time": 1,
        "last_updated": "2026-01-01T11:00:00Z",
    }


async def test_token_upsert_is_keyed_by_uid_and_type(cluster):
    cpo, emsp, party = await admin_pair(cluster)
    tok = {"country_code": "DE", "party_id": "EMS", "uid": "U1", "type": "RFID", "contract_id": "DE-EMS-1",
           "issuer": "EMS", "valid": True, "whitelist": "ALWAYS", "last_updated": "2026-01-01T00:00:00Z"}
    status, body, _ = await admin(emsp, "PUT", "/tokens/U1", body=tok)  # type defaults to RFID
    assert (status, body["data"]["uid"]) == (201, "U1")
    status, body, _ = await admin(emsp, "PUT", "/tokens/U1?type=APP_USER", body=tok)
    assert (status, body["status_code"]) == (400, 2001) and "type" in body["status_message"]
    status, _, _ = await admin(emsp, "PUT", "/tokens/U1?type=APP_USER", body={**tok, "type": "APP_USER"})
    assert status == 201  # another token: same uid, other type
    async with emsp.engine.connect() as conn:
        for type_ in ("RFID", "APP_USER"):
            assert await objects.get(conn, ObjectKey("tokens", 0, "DE", "EMS", "U1", type_)) is not None
    # Our eMSP role owns tokens; a CPO's cc/pid is not ours to publish under.
    status, body, _ = await admin(emsp, "PUT", "/tokens/U2", body={**tok, "uid": "U2", "country_code": "NL",
                                                                  "party_id": "CPO"})
    assert (status, body["status_code"]) == (400, 2001) and "EMSP roles" in body["status_message"]


async def test_reads_of_what_partners_sent(cluster):
    cpo, emsp, party = await admin_pair(cluster)
    for tid in ("T1", "T2", "T3"):
        await cpo.publish("tariffs", Tariff.from_wire(tariff(tid)))
    result = await emsp.pull(party.name, "tariffs", full=True)
    assert result.stored == 3

    status, body, _ = await admin(emsp, "GET", "/partners")
    assert status == 200
    (p,) = body["data"]
    assert (p["name"], p["status"], p["version"]) == ("nl-cpo", "REGISTERED", "2.2.1")
    assert p["sync"]["pulls"]["tariffs"]["objects_seen"] == 3 and p["sync"]["pulls"]["tariffs"]["last_error"] is None
    assert (p["sync"]["pending"], p["sync"]["dead"], p["sync"]["lag_s"]) == (0, 0, 0)

    status, body, _ = await admin(emsp, "GET", "/partners/nl-cpo")
    assert status == 200 and body["data"]["roles"][0]["party_id"] == "CPO"
    assert body["data"]["sync"]["dead_letters"] == []
    assert ("tariffs", "SENDER") in {(e["identifier"], e["role"]) for e in body["data"]["endpoints"]}

    status, body, headers = await admin(emsp, "GET", "/partners/nl-cpo/tariffs?limit=2")
    assert status == 200 and [t["id"] for t in body["data"]] == ["T1", "T2"]
    assert (headers["X-Total-Count"], headers["X-Limit"]) == ("3", "2")
    next_url = headers["Link"].split(">")[0].lstrip("<")
    assert next_url.startswith(f"{emsp.config.public_url}/admin/partners/nl-cpo/tariffs?")
    status, body, headers = await admin(emsp, "GET", next_url)
    assert [t["id"] for t in body["data"]] == ["T3"] and "Link" not in headers

    status, body, _ = await admin(emsp, "GET", "/received/tariffs/nl/cpo/t2")  # CiString keys
    assert (status, body["data"]["partner"], body["data"]["stale"]) == (200, "nl-cpo", False)
    assert body["data"]["object"] == json.loads(Tariff.from_wire(tariff("T2")).to_json_bytes())

    for path in ("/received/tariffs/NL/CPO/T9", "/received/nothing/NL/CPO/T1", "/partners/nobody",
                 "/partners/nobody/tariffs", "/partners/nl-cpo/nothing"):
        status, body, _ = await admin(emsp, "GET", path)
        assert (status, body["status_code"]) == (404, 2000), path
