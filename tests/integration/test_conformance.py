"""Spec conformance found by testing against an independent implementation
(issue 8): commands are checked before a missing hook (1.1), published
endpoint URLs end with `/` (1.3), routing headers from a request are believed
only where they may be (4.5), and a 405 names every method the path serves
(4.8)."""

from __future__ import annotations

import sqlalchemy as sa

from evroam.ocpi.locations import Location
from evroam.ocpi.pagination import join_url
from evroam.ocpi.sessions import Session
from evroam.store.tables import commands as commands_table
from evroam.store.tables import objects
from tests.builders import location, session, token
from tests.nodes import wait_for
from tests.ocpi_calls import call, count, register

CPO = [("CPO", "NL", "CPO")]
EMSP = [("EMSP", "DE", "EMS")]
RU = "http://127.0.0.1:1/r/1"
PROFILE = {"charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 16}]}
ACTIVE = {"start_date_time": "2026-01-01T10:00:00Z", "charging_profile": PROFILE}


async def cpo_and_emsp(cluster):
    """A CPO (NL/CPO) with location L1 and the eMSP's session S1; the eMSP
    (DE/EMS) registered with it and holding S1 too."""
    cpo, emsp, cpo_at_emsp, emsp_at_cpo = await register(cluster, CPO, EMSP)
    await cpo.publish("locations", Location.from_wire(location("L1")))
    await cpo.publish("sessions", Session.from_wire(session(location_id="L1")))
    await wait_for(lambda: _has(emsp, "sessions"), what="S1 delivered to the eMSP")
    return cpo, emsp, cpo_at_emsp, emsp_at_cpo


async def _has(node, module: str) -> bool:
    return await count(node, module) > 0


async def rows(node, table=commands_table) -> int:
    async with node.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


# --- 1.1 commands are checked before a missing hook -----------------------------------------------


async def test_commands_are_checked_before_a_missing_hook(cluster):
    cpo, emsp, party, _ = await cpo_and_emsp(cluster)
    url = party.endpoint_url("commands", "RECEIVER")
    at_nowhere = {
        "START_SESSION": {"token": token(), "location_id": "NOPE"},
        "RESERVE_NOW": {"token": token(), "expiry_date": "2030-01-01T00:00:00Z",
                        "reservation_id": "R1", "location_id": "NOPE"},
        "UNLOCK_CONNECTOR": {"location_id": "NOPE", "evse_uid": "E1", "connector_id": "1"},
    }
    # No hook is installed on the CPO at all.
    for ct, body in at_nowhere.items():
        status, env, _ = await call("POST", join_url(url, ct), party.token_out, {**body, "response_url": RU})
        assert (status, env["status_code"], env["status_message"]) == (200, 2003, "unknown location 'NOPE'"), ct
        assert env["data"] == {"result": "REJECTED", "timeout": 0,
                               "message": [{"language": "en", "text": "unknown location 'NOPE'"}]}, ct
    status, env, _ = await call("POST", join_url(url, "STOP_SESSION"), party.token_out,
                                {"session_id": "S404", "response_url": RU})
    assert (status, env["status_code"], env["data"]["result"], env["data"]["timeout"]) == (
        200, 1000, "UNKNOWN_SESSION", 0)
    # What we hold is fine: only then does the missing hook make it NOT_SUPPORTED.
    for ct, body in (("START_SESSION", {"token": token(), "location_id": "L1"}),
                     ("STOP_SESSION", {"session_id": "S1"})):
        status, env, _ = await call("POST", join_url(url, ct), party.token_out, {**body, "response_url": RU})
        assert (status, env["status_code"], env["data"]["result"]) == (200, 1000, "NOT_SUPPORTED"), ct
    # The same order for charging profiles: an unknown session is UNKNOWN_SESSION.
    status, env, _ = await call("PUT", join_url(party.endpoint_url("chargingprofiles", "RECEIVER"), "S404"),
                                party.token_out, {"charging_profile": PROFILE, "response_url": RU})
    assert (status, env["status_code"], env["data"]) == (200, 1000, {"result": "UNKNOWN_SESSION", "timeout": 0})


# --- 1.3 endpoint URLs end with a slash ---------------------------------------------------------


async def test_published_urls_end_with_a_slash_and_templates_work_both_ways(cluster):
    cpo, emsp, cpo_at_emsp, emsp_at_cpo = await cpo_and_emsp(cluster)
    status, env, _ = await call("GET", cpo.config.versions_url, cpo_at_emsp.token_out)
    assert [v["url"] for v in env["data"]] == [f"{cpo.config.public_url}/ocpi/2.2.1/"]
    status, env, _ = await call("GET", env["data"][0]["url"], cpo_at_emsp.token_out)
    urls = {(e["identifier"], e["role"]): e["url"] for e in env["data"]["endpoints"]}
    assert urls[("credentials", "SENDER")] == f"{cpo.config.public_url}/ocpi/2.2.1/credentials/"
    assert urls[("locations", "SENDER")] == f"{cpo.config.public_url}/ocpi/2.2.1/sender/locations/"
    assert all(u.endswith("/") for u in urls.values()), urls
    # The eMSP's receiver, as the independent partner builds push URLs
    # ({url}{cc}/{pid}/{id}), and as 2.3.0 templates do ({url}/{cc}/…).
    rx = emsp_at_cpo.endpoint_url("locations", "RECEIVER")
    assert rx.endswith("/receiver/locations/")
    status, env, _ = await call("PUT", f"{rx}NL/CPO/L7", emsp_at_cpo.token_out, location("L7"))
    assert (status, env["status_code"]) == (201, 1000)
    status, env, _ = await call("GET", f"{rx}/NL/CPO/L7/", emsp_at_cpo.token_out)
    assert (status, env["status_code"], env["data"]["id"]) == (200, 1000, "L7")
    # Our client joins slashed and unslashed partner URLs alike.
    assert join_url(rx, "NL", "CPO", "L7") == join_url(rx.rstrip("/"), "NL", "CPO", "L7") == rx + "NL/CPO/L7"
    # A Link on a list fetched at the published URL stays under it.
    await cpo.publish("locations", Location.from_wire(location("L2")))
    sender = cpo_at_emsp.endpoint_url("locations", "SENDER")
    status, env, headers = await call("GET", f"{sender}?limit=1", cpo_at_emsp.token_out)
    assert headers["link"] == f'<{sender}?offset=1&limit=1>; rel="next"'
    # Our own pull pages through the slashed URL and its Link.
    emsp.app.state.ctx.page_limit = cpo.app.state.ctx.page_limit = 1
    result = await emsp.pull(cpo_at_emsp.name, "locations", full=True)
    assert (result.error, result.stored) == (None, 2)


# --- 4.5 routing headers from a request -----------------------------------------------------------


async def _profiles(node) -> list[tuple[str, str, str]]:
    async with node.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(
            sa.select(objects.c.cc_key, objects.c.pid_key, objects.c.oid_key)
            .where(objects.c.module == "activechargingprofiles"))).all()]


async def test_active_profile_is_kept_under_its_session_never_under_a_header(cluster):
    cpo, emsp, cpo_at_emsp, emsp_at_cpo = await cpo_and_emsp(cluster)
    url = emsp_at_cpo.endpoint_url("chargingprofiles", "SENDER")
    tok = emsp_at_cpo.token_out
    # Over-long values: 2001 naming the header, nothing written (on PostgreSQL
    # this was a 500 from the database).
    for name, value in (("OCPI-from-country-code", "TOOLONG"), ("OCPI-from-party-id", "TOOLONGPID"),
                        ("OCPI-to-party-id", "EMSX")):
        status, env, _ = await call("PUT", join_url(url, "S1"), tok, ACTIVE, {
            "OCPI-from-country-code": "BE", "OCPI-from-party-id": "BEC", name: value})
        assert (status, env["status_code"]) == (200, 2001), name
        assert env["status_message"] == f"{name}: {value!r} is not " + (
            "a country code (2 letters)" if "country" in name else "a party id (3 characters)")
    assert await _profiles(emsp) == []
    # Unknown session: 404, nothing written.
    status, env, _ = await call("PUT", join_url(url, "S404"), tok, ACTIVE)
    assert (status, env["status_code"], env["status_message"]) == (404, 2000, "unknown session 'S404'")
    assert await _profiles(emsp) == []
    # A From naming someone else is not believed: kept under the session's CPO.
    status, env, _ = await call("PUT", join_url(url, "S1"), tok, ACTIVE,
                                {"OCPI-from-country-code": "BE", "OCPI-from-party-id": "BEC"})
    assert (status, env["status_code"]) == (201, 1000) and "data" not in env
    assert await _profiles(emsp) == [("NL", "CPO", "S1")]
    # A From naming the caller's own role (in any case) is believed: the same session, replaced.
    status, env, _ = await call("PUT", join_url(url, "S1"), tok, ACTIVE,
                                {"OCPI-from-country-code": "nl", "OCPI-from-party-id": "cpo"})
    assert (status, env["status_code"]) == (200, 1000)
    assert await _profiles(emsp) == [("NL", "CPO", "S1")]


async def test_malformed_routing_headers_are_2001_everywhere_and_write_nothing(cluster):
    cpo, emsp, cpo_at_emsp, emsp_at_cpo = await cpo_and_emsp(cluster)
    bad = {"OCPI-from-country-code": "TOOLONG", "OCPI-from-party-id": "TOOLONGPID"}
    before = await count(emsp, "locations")
    rx = emsp_at_cpo.endpoint_url("locations", "RECEIVER")
    cases = [
        ("PUT", f"{rx}NL/CPO/L9", emsp_at_cpo.token_out, location("L9")),
        ("PATCH", f"{rx}NL/CPO/L1", emsp_at_cpo.token_out, {"name": "x", "last_updated": "2027-01-01T00:00:00Z"}),
        ("GET", cpo_at_emsp.endpoint_url("locations", "SENDER"), cpo_at_emsp.token_out, None),
        ("GET", cpo_at_emsp.endpoint_url("locations", "SENDER") + "L1", cpo_at_emsp.token_out, None),
        ("POST", cpo_at_emsp.endpoint_url("commands", "RECEIVER") + "STOP_SESSION", cpo_at_emsp.token_out,
         {"session_id": "S1", "response_url": RU}),
        ("POST", emsp_at_cpo.endpoint_url("tokens", "SENDER") + "APP-42/authorize", emsp_at_cpo.token_out, None),
    ]
    commands_before = await rows(cpo)
    for method, url, tok, body in cases:
        status, env, _ = await call(method, url, tok, body, bad)
        assert (status, env["status_code"], env["status_message"]) == (
            200, 2001, "OCPI-from-country-code: 'TOOLONG' is not a country code (2 letters)"), (method, url)
    assert await count(emsp, "locations") == before
    assert await rows(cpo) == commands_before
    # Versions and credentials never read routing headers: no 2001 there.
    status, env, _ = await call("GET", cpo.config.versions_url, cpo_at_emsp.token_out, None, bad)
    assert (status, env["status_code"]) == (200, 1000)


# --- 4.8 the Allow header of a 405 -----------------------------------------------------------------


async def test_405_allow_names_every_method_of_the_path(cluster):
    cpo, emsp, cpo_at_emsp, emsp_at_cpo = await cpo_and_emsp(cluster)
    rx = emsp_at_cpo.endpoint_url("locations", "RECEIVER")
    for url in (f"{rx}NL/CPO/L1", f"{rx}NL/CPO/L1/", f"{rx}NL/CPO/L1/E1", f"{rx}NL/CPO/L1/E1/1"):
        status, env, headers = await call("DELETE", url, emsp_at_cpo.token_out)
        assert (status, env["status_code"], headers["allow"]) == (405, 2000, "GET, PATCH, PUT"), url
    tariffs = emsp_at_cpo.endpoint_url("tariffs", "RECEIVER")
    status, _, headers = await call("PATCH", f"{tariffs}NL/CPO/T1", emsp_at_cpo.token_out, {})
    assert (status, headers["allow"]) == (405, "DELETE, GET, PUT")
    status, _, headers = await call("GET", cpo_at_emsp.endpoint_url("commands", "RECEIVER") + "START_SESSION",
                                    cpo_at_emsp.token_out)
    assert (status, headers["allow"]) == (405, "POST")
    creds = cpo_at_emsp.endpoint_url("credentials")
    status, _, headers = await call("PATCH", creds, cpo_at_emsp.token_out, {})
    assert (status, headers["allow"]) == (405, "DELETE, GET, POST, PUT")
    # The handshake's own 405 (POST when registered) names them too.
    status, env, headers = await call("POST", creds, cpo_at_emsp.token_out, {})
    assert (status, headers["allow"]) == (405, "DELETE, GET, POST, PUT")


async def test_a_stranger_is_refused_before_the_token_type_is_judged(cluster):
    """The Tokens receiver reads ?type= from the URL: a caller without a valid
    token gets 401 for a bad type as for a good one, never 2001 (which would
    tell a stranger how the route judges its input)."""
    cpo, emsp, cpo_at_emsp, emsp_at_cpo = await register(cluster, CPO, EMSP)
    url = f"{cpo.config.public_url}/ocpi/2.2.1/receiver/tokens/DE/EMS/T1?type=NOPE"
    for method, body in (("GET", None), ("PUT", {}), ("PATCH", {})):
        for bad in (None, "not-a-token-we-issued"):
            status, envelope, _ = await call(method, url, bad, body)
            assert (status, envelope["status_code"]) == (401, 2000), (method, bad, envelope)
    # A registered caller still learns what is wrong with its parameter.
    status, envelope, _ = await call("GET", url, cpo_at_emsp.token_out)
    assert (status, envelope["status_code"]) == (200, 2001), envelope
    assert envelope["status_message"].startswith("type: 'NOPE' is not a TokenType"), envelope
