"""The admin API reads our own objects back, deletes our tariffs, and
authorizes tokens in real time (issue 8, 5.6), so an operator's charging
backend needs no Python for any of it."""

from __future__ import annotations

import json

import aiohttp
import sqlalchemy as sa

from evroam.ocpi.headers import encode_token
from evroam.store import outbox as outbox_repo
from evroam.store.tables import call_log, outbox
from tests.builders import T, evse, location, tariff, token
from tests.from_outside import ADMIN_TOKEN, admin
from tests.nodes import wait_for

CPO = [("CPO", "NL", "CPO")]
EMSP = [("EMSP", "DE", "EMS")]
T2 = "2026-02-01T00:00:00Z"


async def pair(cluster, **cpo_settings: object):
    cpo = await cluster.node("cpo", CPO, admin_token=ADMIN_TOKEN, **cpo_settings)
    emsp = await cluster.node("emsp", EMSP, admin_token=ADMIN_TOKEN)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    await emsp.handshake.register(versions_url, token_a, name="cpo")
    return cpo, emsp


def url(node) -> str:
    return node.config.public_url


async def at_emsp(emsp, tid: str = "T1") -> dict | None:
    status, doc = await admin(url(emsp), "GET", f"/received/tariffs/NL/CPO/{tid}")
    return doc["data"]["object"] if status == 200 else None


async def pending(cpo) -> list[tuple[str, int]]:
    async with cpo.engine.connect() as conn:
        return [(r.method, r.seq) for r in await conn.execute(sa.select(outbox.c.method, outbox.c.seq))]


async def test_every_put_has_its_get(cluster):
    cpo = await cluster.node("cpo", CPO, admin_token=ADMIN_TOKEN)
    emsp = await cluster.node("emsp", EMSP, admin_token=ADMIN_TOKEN)
    base = url(cpo)
    written = {}
    loc = location(evses=[evse(evse_id="NL*CPO*E1", tariff_ids=["T1"])])
    for path, body in (("/tariffs/T1", tariff()), ("/locations/LOC1", loc)):
        status, doc = await admin(base, "PUT", path, body)
        assert status == 201
        written[path] = doc["data"]
    status, doc = await admin(base, "PUT", "/locations/LOC1/evses/E1/status", {"status": "CHARGING",
                                                                              "last_updated": T2})
    assert status == 200
    status, doc = await admin(base, "POST", "/sessions", {
        "id": "S1", "location_id": "LOC1", "evse_uid": "E1", "connector_id": "1", "currency": "EUR",
        "cdr_token": {"country_code": "DE", "party_id": "EMS", "uid": "U1", "type": "RFID", "contract_id": "C1"},
        "start_date_time": T})
    assert status == 201
    written["/sessions/S1"] = doc["data"]
    assert (await admin(base, "POST", "/sessions/S1/stop", {"end_date_time": T2}))[0] == 200
    status, doc = await admin(base, "POST", "/sessions/S1/cdr")
    assert status == 201
    written["/cdrs/S1"] = doc["data"]
    status, doc = await admin(url(emsp), "PUT", "/tokens/APP-42?type=APP_USER", token())
    assert status == 201

    status, doc = await admin(base, "GET", "/tariffs/T1")
    assert (status, doc["status_code"], doc["data"]) == (200, 1000, written["/tariffs/T1"])
    status, doc = await admin(base, "GET", "/locations/loc1")  # ids are CiStrings
    assert (status, doc["data"]["id"], doc["data"]["evses"][0]["status"]) == (200, "LOC1", "CHARGING")
    status, doc = await admin(base, "GET", "/locations/LOC1/evses/e1")
    assert (status, doc["data"]["uid"], doc["data"]["connectors"][0]["tariff_ids"]) == (200, "E1", ["T1"])
    status, doc = await admin(base, "GET", "/locations/LOC1/evses/E1/status")
    assert (status, doc["data"]) == (200, {"status": "CHARGING", "last_updated": T2})
    status, doc = await admin(base, "GET", "/sessions/S1")
    assert (status, doc["data"]["status"], doc["data"]["end_date_time"]) == (200, "COMPLETED", T2)
    status, doc = await admin(base, "GET", "/cdrs/S1")
    assert (status, doc["data"]) == (200, written["/cdrs/S1"])
    status, doc = await admin(url(emsp), "GET", "/tokens/APP-42?type=APP_USER")
    assert (status, doc["data"]) == (200, token())

    for node, path, message in (
            (cpo, "/tariffs/T9", "no tariff 'T9' of ours"),
            (cpo, "/locations/LOC9", "no location 'LOC9' of ours"),
            (cpo, "/locations/LOC1/evses/E9", "location 'LOC1' has no EVSE 'E9'"),
            (cpo, "/locations/LOC1/evses/E9/status", "location 'LOC1' has no EVSE 'E9'"),
            (cpo, "/sessions/S9", "no session 'S9' of ours"),
            (cpo, "/cdrs/C9", "no cdr 'C9' of ours"),
            (emsp, "/tokens/APP-42", "no token 'APP-42' of type RFID of ours"),  # RFID is the default type
            # What a partner sent us is not ours (it is under /admin/received).
            (emsp, "/tariffs/T1", "no tariff 'T1' of ours")):
        status, doc = await admin(url(node), "GET", path)
        assert (status, doc["status_code"], doc["status_message"], "data" in doc) == (
            404, 2000, message, False), path
    status, doc = await admin(url(emsp), "GET", "/tokens/APP-42?type=NFC")
    assert (status, doc["status_code"]) == (400, 2001)
    assert doc["status_message"].startswith("type: 'NFC' is not one of")


async def test_an_id_under_two_of_our_roles_needs_the_role(cluster):
    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO"), ("CPO", "BE", "CPB")], admin_token=ADMIN_TOKEN)
    for cc, pid, price in (("NL", "CPO", 0.25), ("BE", "CPB", 0.30)):
        assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff(price=price, cc=cc, pid=pid)))[0] == 201
    status, doc = await admin(url(cpo), "GET", "/tariffs/T1")
    assert (status, doc["status_code"], doc["status_message"]) == (
        400, 2001, "tariff 'T1' exists under several of our roles: say which with country_code and party_id")
    status, doc = await admin(url(cpo), "GET", "/tariffs/T1?country_code=be&party_id=cpb")
    assert (status, doc["data"]["party_id"], doc["data"]["elements"][0]["price_components"][0]["price"]) == (
        200, "CPB", 0.3)


async def test_deleting_a_tariff_reaches_the_partner_and_a_put_revives_it(cluster):
    cpo, emsp = await pair(cluster)
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff()))[0] == 201
    assert (await admin(url(cpo), "PUT", "/tariffs/T2", tariff("T2")))[0] == 201
    await wait_for(lambda: at_emsp(emsp), what="T1 at the eMSP")

    status, doc = await admin(url(cpo), "DELETE", "/tariffs/t1")
    assert (status, doc["status_code"], doc["status_message"]) == (200, 1000, "deleted")

    async def gone() -> bool:
        return await at_emsp(emsp) is None

    await wait_for(gone, what="the DELETE at the eMSP")
    assert (await admin(url(cpo), "GET", "/tariffs/T1"))[0] == 404
    status, doc = await admin(url(cpo), "DELETE", "/tariffs/T1")
    assert (status, doc["status_message"]) == (404, "no tariff 'T1' of ours")
    # Our Sender list no longer shows it (what a pulling eMSP sees).
    theirs = await emsp.party("cpo")
    async with aiohttp.ClientSession() as s, s.get(theirs.endpoint_url("tariffs", "SENDER"),
                                                   headers={"Authorization": encode_token(theirs.token_out)}) as r:
        listed = json.loads(await r.text())
    assert (r.status, [t["id"] for t in listed["data"]], r.headers["X-Total-Count"]) == (200, ["T2"], "1")
    # Published again, it is created again (201) and pushed again.
    status, _ = await admin(url(cpo), "PUT", "/tariffs/T1", tariff(price=0.4, updated=T2))
    assert status == 201
    await wait_for(lambda: at_emsp(emsp), what="T1 at the eMSP again")
    assert (await at_emsp(emsp))["elements"][0]["price_components"][0]["price"] == 0.4


async def test_a_tariff_a_connector_lists_is_not_deleted(cluster):
    cpo, _ = await pair(cluster)
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff()))[0] == 201
    loc = location(evses=[evse(evse_id="NL*CPO*E1", tariff_ids=["t1"])])
    assert (await admin(url(cpo), "PUT", "/locations/LOC1", loc))[0] == 201
    status, doc = await admin(url(cpo), "DELETE", "/tariffs/T1")
    assert (status, doc["status_code"], doc["status_message"]) == (
        409, 2000, "tariff 'T1' is still listed in tariff_ids of connector(s) LOC1/E1/1: take it out of those "
                   "Locations first")
    assert (await admin(url(cpo), "GET", "/tariffs/T1"))[0] == 200  # nothing written
    assert [m for m, _ in await pending(cpo) if m == "DELETE"] == []


async def test_a_deleted_tariff_prices_no_cdr(cluster):
    cpo = await cluster.node("cpo", CPO, admin_token=ADMIN_TOKEN)
    base = url(cpo)
    assert (await admin(base, "PUT", "/tariffs/T1", tariff()))[0] == 201
    assert (await admin(base, "PUT", "/locations/LOC1", location(evses=[evse(evse_id="NL*CPO*E1")])))[0] == 201
    status, _ = await admin(base, "POST", "/sessions", {
        "id": "S1", "location_id": "LOC1", "evse_uid": "E1", "connector_id": "1", "currency": "EUR",
        "cdr_token": {"country_code": "DE", "party_id": "EMS", "uid": "U1", "type": "RFID", "contract_id": "C1"},
        "start_date_time": T})
    assert status == 201
    assert (await admin(base, "POST", "/sessions/S1/stop", {"end_date_time": T2}))[0] == 200
    assert (await admin(base, "DELETE", "/tariffs/T1"))[0] == 200
    status, doc = await admin(base, "POST", "/sessions/S1/cdr", {"tariff_ids": ["T1"]})
    assert (status, doc["status_message"]) == (409, "no tariff of ours to price session 'S1' with (connector E1/1)")


async def test_a_delete_replaces_the_pending_puts(cluster):
    cpo, emsp = await pair(cluster, run_workers=False)
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff()))[0] == 201
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff(price=0.3, updated=T2)))[0] == 200
    assert (await admin(url(cpo), "DELETE", "/tariffs/T1"))[0] == 200
    assert await pending(cpo) == [("DELETE", 3)]
    assert await cpo.delivery.run_once() == 1
    assert await pending(cpo) == []
    await emsp.call_log.flush()
    async with emsp.engine.connect() as conn:
        calls = [(r.method, r.http_status) for r in await conn.execute(
            sa.select(call_log.c.method, call_log.c.http_status).where(call_log.c.url.like("%/tariffs/%")))]
    assert calls == [("DELETE", 404)]  # the eMSP never had it: nothing to remove, and no PUT first
    # Published again before the DELETE went out: the PUT replaces it.
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff(price=0.4, updated=T2)))[0] == 201
    assert await pending(cpo) == [("PUT", 1)]
    assert (await admin(url(cpo), "DELETE", "/tariffs/T1"))[0] == 200
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff(price=0.5, updated=T2)))[0] == 201
    assert await pending(cpo) == [("PUT", 3)]
    await cpo.delivery.run_once()
    assert (await at_emsp(emsp))["elements"][0]["price_components"][0]["price"] == 0.5


async def test_a_put_in_flight_when_the_delete_comes_is_followed_by_the_delete(cluster):
    """A stale PUT never resurrects a deleted tariff: the PUT that was on the
    wire when the DELETE was queued carries the document the tariff still
    has (a deletion keeps it), and must not be taken for the newer change."""
    cpo, emsp = await pair(cluster, run_workers=False)
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff()))[0] == 201
    async with cpo.engine.begin() as conn:
        (claimed,) = await outbox_repo.claim(conn, "test-worker")
    outcome = await cpo.delivery._attempt(claimed)  # the PUT reaches the eMSP …
    assert outcome.error is None and await at_emsp(emsp) is not None
    assert (await admin(url(cpo), "DELETE", "/tariffs/T1"))[0] == 200  # … while the DELETE is queued
    await cpo.delivery._record(claimed, outcome)
    assert await pending(cpo) == [("DELETE", 2)]
    assert await cpo.delivery.run_once() == 1
    assert await at_emsp(emsp) is None
    assert await pending(cpo) == []


async def test_a_claimed_put_of_a_deleted_tariff_is_sent_as_delete(cluster):
    cpo, emsp = await pair(cluster, run_workers=False)
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff()))[0] == 201
    await cpo.delivery.run_once()
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff(price=0.3, updated=T2)))[0] == 200
    async with cpo.engine.begin() as conn:
        (claimed,) = await outbox_repo.claim(conn, "test-worker")
    assert claimed.method == "PUT"
    assert (await admin(url(cpo), "DELETE", "/tariffs/T1"))[0] == 200  # between the claim and the send
    outcome = await cpo.delivery._attempt(claimed)
    assert outcome.error is None
    assert await at_emsp(emsp) is None  # the state at send time went out: deleted, not price 0.3


async def test_an_unsure_delete_is_checked_at_the_partner_first(cluster):
    cpo, emsp = await pair(cluster, run_workers=False)
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff()))[0] == 201
    await cpo.delivery.run_once()
    assert (await admin(url(cpo), "DELETE", "/tariffs/T1"))[0] == 200
    await cpo.delivery.run_once()
    assert await at_emsp(emsp) is None
    # The same DELETE again, as after a lost answer: the partner lacks it, so nothing is sent.
    assert (await admin(url(cpo), "PUT", "/tariffs/T1", tariff()))[0] == 201
    async with cpo.engine.begin() as conn:
        await conn.execute(outbox.update().values(unsure=True))
    assert (await admin(url(cpo), "DELETE", "/tariffs/T1"))[0] == 200
    held = cpo.delivery.already_held
    await cpo.delivery.run_once()
    assert (cpo.delivery.already_held, await pending(cpo)) == (held + 1, [])


# --- real-time authorization ----------------------------------------------------------------


async def test_authorize_route_takes_the_whitelist_decision(cluster):
    cpo, emsp = await pair(cluster)
    tokens = {"OK-1": token("OK-1", whitelist="ALWAYS"),
              "BLOCKED-1": token("BLOCKED-1", whitelist="ALWAYS", valid=False),
              "ASK-1": token("ASK-1", whitelist="NEVER", valid=False)}
    for uid, doc in tokens.items():
        assert (await admin(url(emsp), "PUT", f"/tokens/{uid}?type=APP_USER", doc))[0] == 201

    async def cached() -> bool:
        return all([(await admin(url(cpo), "GET", f"/received/tokens/DE/EMS/{uid}"))[0] == 200 for uid in tokens])

    await wait_for(cached, what="the tokens at the CPO")
    base = url(cpo)

    status, doc = await admin(base, "POST", "/tokens/OK-1/authorize?type=APP_USER")
    assert (status, doc["status_code"]) == (200, 1000)
    assert doc["data"] == {"allowed": "ALLOWED", "token": tokens["OK-1"], "source": "cache",
                           "reason": "whitelist ALWAYS: decided from the cache", "partner": "emsp"}
    status, doc = await admin(base, "POST", "/tokens/BLOCKED-1/authorize?type=APP_USER")
    assert (status, doc["data"]["allowed"], doc["data"]["source"]) == (200, "BLOCKED", "cache")
    # NEVER: the eMSP is asked, whatever the cache says; its answer comes back whole.
    status, doc = await admin(base, "POST", "/tokens/ASK-1/authorize?type=APP_USER",
                              {"location_id": "LOC1", "evse_uids": ["E1"]})
    assert (status, doc["data"]["allowed"], doc["data"]["source"], doc["data"]["reason"]) == (
        200, "BLOCKED", "realtime", "the eMSP answered BLOCKED")
    assert doc["data"]["token"]["uid"] == "ASK-1" and "authorization_reference" in doc["data"]
    # Unknown everywhere: asked in real time, not allowed.
    status, doc = await admin(base, "POST", "/tokens/NOBODY/authorize")
    assert (status, doc["data"]["allowed"], doc["data"]["source"], "token" in doc["data"]) == (
        200, "NOT_ALLOWED", "realtime", False)
    # Client mistakes: 400, naming what is wrong.
    for path, body, message in (
            ("/tokens/OK-1/authorize?type=NFC", None, "type: 'NFC' is not one of"),
            ("/tokens/OK-1/authorize?type=APP_USER", {"evse_uids": ["E1"]}, "location_id"),
            ("/tokens/OK-1/authorize?type=APP_USER", [1], "body: expected one LocationReferences object")):
        status, doc = await admin(base, "POST", path, body)
        assert (status, doc["status_code"]) == (400, 2001), path
        assert message in doc["status_message"], doc
