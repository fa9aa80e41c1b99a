"""The credentials handshake between real nodes over real HTTP (credentials.asciidoc)."""

from __future__ import annotations

import aiohttp

from evroam.ocpi.headers import encode_token
from evroam.store import calllog
from evroam.store import parties as repo

# Kept importable from here for the modules that import them from this one.
from tests.ocpi_calls import call
from tests.pair import registered_pair
from tests.partners import CPO, EMSP, party_named


async def test_registration_a_b_c(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    assert party.status == "REGISTERED"
    assert party.version == "2.2.1"
    assert party.name == "nl-cpo"
    assert [r["role"] for r in party.roles] == ["CPO"]
    assert {e["identifier"] for e in party.endpoints} >= {"credentials"}

    # The CPO side: registered, with the eMSP's roles and endpoints, fetched
    # during the POST with token B.
    cpo_view = await party_named(cpo, "emsp")
    assert cpo_view.status == "REGISTERED"
    assert [r["country_code"] + r["party_id"] for r in cpo_view.roles] == ["DEEMS"]
    assert cpo_view.endpoints and cpo_view.version == "2.2.1"

    # Token C (held by the eMSP as token_out) works; token A no longer does.
    status, body, _ = await call("GET", cpo.config.versions_url, party.token_out)
    assert status == 200 and body["status_code"] == 1000
    assert body["data"] == [{"version": "2.2.1", "url": f"{cpo.config.public_url}/ocpi/2.2.1/"}]
    status, body, _ = await call("GET", cpo.config.versions_url, token_a)
    assert status == 401 and body["status_code"] == 2000
    # And the CPO can call the eMSP with token B.
    status, body, _ = await call("GET", emsp.config.versions_url, cpo_view.token_out)
    assert status == 200 and body["status_code"] == 1000


async def test_tokens_we_issue_are_stored_hashed(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    import sqlalchemy as sa

    from evroam.store.tables import party_tokens

    async with cpo.engine.connect() as conn:
        hashes = [r.token_hash for r in (await conn.execute(sa.select(party_tokens))).all()]
    assert party.token_out not in hashes
    assert repo.hash_token(party.token_out) in hashes


async def test_call_log_records_both_directions(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    await cpo.call_log.flush()
    await emsp.call_log.flush()
    cpo_rows = await calllog.recent(cpo.engine, limit=50)
    # In: GET versions, GET details, POST credentials. Out: the callbacks with token B.
    ins = [(r["method"], r["url"].rsplit("/", 1)[-1], r["http_status"], r["ocpi_status"]) for r in cpo_rows if r["direction"] == "in"]
    outs = [(r["method"], r["http_status"], r["ocpi_status"]) for r in cpo_rows if r["direction"] == "out"]
    assert ("POST", "credentials", 200, 1000) in ins
    assert ("GET", "versions", 200, 1000) in ins
    assert outs.count(("GET", 200, 1000)) == 2
    post = next(r for r in cpo_rows if r["method"] == "POST")
    assert post["duration_ms"] > 0 and post["request_id"] and post["correlation_id"]
    # Tokens never reach the log in clear.
    assert party.token_out not in (post["response_body"] or "")
    assert '"token":"<redacted>"' in post["response_body"]


async def test_rotation_replaces_both_tokens(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    old_c = party.token_out
    old_b = (await party_named(cpo, "emsp")).token_out
    rotated = await emsp.handshake.rotate("nl-cpo")
    new_c = rotated.token_out
    new_b = (await party_named(cpo, "emsp")).token_out
    assert new_c != old_c and new_b != old_b
    for url, old, new in ((cpo.config.versions_url, old_c, new_c), (emsp.config.versions_url, old_b, new_b)):
        status, body, _ = await call("GET", url, old)
        assert (status, body["status_code"]) == (401, 2000)
        status, body, _ = await call("GET", url, new)
        assert (status, body["status_code"]) == (200, 1000)


async def test_rotation_from_the_inviting_side(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    old_b = (await party_named(cpo, "emsp")).token_out
    await cpo.handshake.rotate("emsp")
    status, body, _ = await call("GET", emsp.config.versions_url, old_b)
    assert status == 401
    new_c = (await party_named(emsp, "nl-cpo")).token_out
    status, body, _ = await call("GET", cpo.config.versions_url, new_c)
    assert (status, body["status_code"]) == (200, 1000)


async def test_unregistration_kills_tokens_on_both_sides(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    b = (await party_named(cpo, "emsp")).token_out
    warning = await emsp.handshake.unregister("nl-cpo")
    assert warning is None
    assert (await party_named(cpo, "emsp")).status == "UNREGISTERED"
    assert (await party_named(emsp, "nl-cpo")).status == "UNREGISTERED"
    status, body, _ = await call("GET", cpo.config.versions_url, party.token_out)
    assert (status, body["status_code"]) == (401, 2000)
    status, body, _ = await call("GET", emsp.config.versions_url, b)
    assert (status, body["status_code"]) == (401, 2000)


async def test_get_credentials_returns_ours_with_callers_token(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    status, body, _ = await call("GET", f"{cpo.config.public_url}/ocpi/2.2.1/credentials", party.token_out)
    assert status == 200 and body["status_code"] == 1000
    assert body["data"] == {
        "token": party.token_out,
        "url": cpo.config.versions_url,
        "roles": [{"role": "CPO", "business_details": {"name": "cpo CPO"}, "party_id": "CPO", "country_code": "NL"}],
    }


async def test_second_post_is_405(cluster):
    cpo, emsp, token_a, party = await registered_pair(cluster)
    creds = {"token": "x" * 10, "url": emsp.config.versions_url,
             "roles": [{"role": "EMSP", "party_id": "EMS", "country_code": "DE", "business_details": {"name": "e"}}]}
    status, body, _ = await call("POST", f"{cpo.config.public_url}/ocpi/2.2.1/credentials", party.token_out, creds)
    assert (status, body["status_code"]) == (405, 2000)
    # Token A is spent: the POST is refused as unauthenticated.
    status, body, _ = await call("POST", f"{cpo.config.public_url}/ocpi/2.2.1/credentials", token_a, creds)
    assert (status, body["status_code"]) == (401, 2000)


async def test_put_and_delete_before_registration_are_405(cluster):
    cpo = await cluster.node("cpo", CPO)
    token_a, _ = await cpo.handshake.invite("someone")
    url = f"{cpo.config.public_url}/ocpi/2.2.1/credentials"
    creds = {"token": "abc", "url": "http://127.0.0.1:9/ocpi/versions",
             "roles": [{"role": "EMSP", "party_id": "EMS", "country_code": "DE", "business_details": {"name": "e"}}]}
    status, body, _ = await call("PUT", url, token_a, creds)
    assert (status, body["status_code"]) == (405, 2000)
    status, body, _ = await call("DELETE", url, token_a)
    assert (status, body["status_code"]) == (405, 2000)
    # A rejected request writes nothing: token A still works.
    status, body, _ = await call("GET", cpo.config.versions_url, token_a)
    assert (status, body["status_code"]) == (200, 1000)


async def test_token_a_never_opens_functional_modules(cluster):
    from fastapi import Depends

    from evroam.server.auth import authenticate_registered
    from evroam.server.responses import ocpi_response

    cpo = await cluster.node("cpo", CPO)
    emsp = await cluster.node("emsp", EMSP)

    # A functional route guarded the way every module router is guarded.
    @cpo.app.get("/ocpi/2.2.1/cpo/locations", dependencies=[Depends(authenticate_registered)])
    async def _locations():
        return ocpi_response([])

    token_a, versions_url = await cpo.handshake.invite("emsp")
    status, body, _ = await call("GET", f"{cpo.config.public_url}/ocpi/2.2.1/cpo/locations", token_a)
    assert (status, body["status_code"]) == (401, 2000)
    party = await emsp.handshake.register(versions_url, token_a)
    status, body, _ = await call("GET", f"{cpo.config.public_url}/ocpi/2.2.1/cpo/locations", party.token_out)
    assert (status, body["status_code"], body["data"]) == (200, 1000, [])


async def test_versions_requires_a_token(cluster):
    cpo = await cluster.node("cpo", CPO)
    for url in (cpo.config.versions_url, f"{cpo.config.public_url}/ocpi/2.2.1"):
        status, body, _ = await call("GET", url, None)
        assert (status, body["status_code"]) == (401, 2000)
        status, body, _ = await call("GET", url, "not-a-token")
        assert (status, body["status_code"]) == (401, 2000)


async def test_raw_token_only_from_partner_configured_for_it(cluster):
    cpo = await cluster.node("cpo", CPO)
    strict_a, _ = await cpo.handshake.invite("strict")
    lenient_a, _ = await cpo.handshake.invite("lenient", allow_raw_token=True)
    async with aiohttp.ClientSession() as s:
        async with s.get(cpo.config.versions_url, headers={"Authorization": f"Token {strict_a}"}) as r:
            assert r.status == 401
        async with s.get(cpo.config.versions_url, headers={"Authorization": f"Token {lenient_a}"}) as r:
            assert r.status == 200
        async with s.get(cpo.config.versions_url, headers={"Authorization": encode_token(lenient_a)}) as r:
            assert r.status == 200


async def test_request_and_correlation_ids_echoed_or_generated(cluster):
    cpo = await cluster.node("cpo", CPO)
    token_a, _ = await cpo.handshake.invite("x")
    async with aiohttp.ClientSession() as s:
        h = {"Authorization": encode_token(token_a), "X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"}
        async with s.get(cpo.config.versions_url, headers=h) as r:
            assert r.headers["X-Request-ID"] == "req-1" and r.headers["X-Correlation-ID"] == "corr-1"
        async with s.get(cpo.config.versions_url, headers={"Authorization": encode_token(token_a)}) as r:
            assert len(r.headers["X-Request-ID"]) == 36 and len(r.headers["X-Correlation-ID"]) == 36
        # Trailing slash: served directly, no redirect.
        async with s.get(cpo.config.versions_url + "/", headers=h, allow_redirects=False) as r:
            assert r.status == 200


async def test_one_node_several_roles(cluster):
    hub = await cluster.node("multi", [("CPO", "NL", "ABC"), ("EMSP", "NL", "XYZ"), ("PTP", "NL", "PAY")])
    emsp = await cluster.node("emsp", EMSP)
    token_a, versions_url = await hub.handshake.invite("emsp")
    party = await emsp.handshake.register(versions_url, token_a)
    assert [(r["role"], r["party_id"]) for r in party.roles] == [("CPO", "ABC"), ("EMSP", "XYZ"), ("PTP", "PAY")]
