"""Transport rules over real HTTP: pagination both sides, envelopes on every
error, unknown fields, the call log's retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import structlog
from fastapi import Depends, Request

from evroam.ocpi.base import dumps
from evroam.ocpi.headers import encode_token
from evroam.server.auth import authenticate_registered
from evroam.server.paging import page_request, paged_response
from evroam.store import calllog
from evroam.store.calllog import CallRecord
from tests.ocpi_calls import call
from tests.pair import registered_pair
from tests.partners import CPO

BASE = datetime(2026, 1, 1, tzinfo=UTC)
ITEMS = [{"id": f"obj-{i:02d}", "last_updated": BASE + timedelta(minutes=i)} for i in range(25)]


def mount_list(node):
    """A paginated Sender list, served the way module routers serve theirs."""

    @node.app.get("/ocpi/2.2.1/test/things", dependencies=[Depends(authenticate_registered)])
    async def things(request: Request):
        page = page_request(request)
        rows = [i for i in ITEMS
                if (page.date_from is None or i["last_updated"] >= page.date_from)
                and (page.date_to is None or i["last_updated"] < page.date_to)]
        chunk = [{"id": r["id"], "last_updated": r["last_updated"].strftime("%Y-%m-%dT%H:%M:%SZ")}
                 for r in rows[page.offset: page.offset + page.limit]]
        return paged_response(request, page, len(rows), dumps(chunk))

    return f"{node.config.public_url}/ocpi/2.2.1/test/things"


async def test_pagination_headers_and_link(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    url = mount_list(cpo)
    cpo.config.page_limit = cpo.app.state.ctx.page_limit = 10
    status, body, h = await call("GET", url + "?date_from=2026-01-01T00:05:00Z&limit=50", party.token_out)
    assert (status, body["status_code"]) == (200, 1000)
    assert [o["id"] for o in body["data"]] == [f"obj-{i:02d}" for i in range(5, 15)]
    assert h["X-Total-Count"] == "20"
    assert h["X-Limit"] == "10"  # the server's maximum, although the client asked for 50
    assert h["Link"] == (f'<{url}?date_from=2026-01-01T00%3A05%3A00Z&offset=10&limit=10>; rel="next"')
    # Last page: no Link at all.
    status, body, h = await call("GET", url + "?date_from=2026-01-01T00:05:00Z&offset=10", party.token_out)
    assert [o["id"] for o in body["data"]] == [f"obj-{i:02d}" for i in range(15, 25)]
    assert "Link" not in h
    # date_to is exclusive.
    status, body, h = await call("GET", url + "?date_to=2026-01-01T00:03:00", party.token_out)
    assert [o["id"] for o in body["data"]] == ["obj-00", "obj-01", "obj-02"]
    # Past the end: success, empty, correct total, no Link.
    status, body, h = await call("GET", url + "?offset=100", party.token_out)
    assert (status, body["status_code"], body["data"], h["X-Total-Count"]) == (200, 1000, [], "25")
    assert "Link" not in h


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "offset=-5", "limit=abc", "date_from=yesterday",
                                   "date_from=2026-01-01T00:00:00%2B01:00", "date_to=2026-13-01T00:00:00Z"])
async def test_pagination_bad_parameters_are_2001(cluster, query):
    cpo, emsp, _, party = await registered_pair(cluster)
    url = mount_list(cpo)
    status, body, _ = await call("GET", f"{url}?{query}", party.token_out)
    assert (status, body["status_code"]) == (200, 2001)
    assert query.split("=")[0] in body["status_message"]


async def test_client_follows_link_to_the_end(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    url = mount_list(cpo)
    cpo.app.state.ctx.page_limit = 7
    pages = [page async for page in emsp.client.paginate(url, party.token_out)]
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [o["id"] for p in pages for o in p] == [i["id"] for i in ITEMS]


async def test_routing_headers_swapped_on_functional_response(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    url = mount_list(cpo)
    async with aiohttp.ClientSession() as s:
        h = {"Authorization": encode_token(party.token_out), "OCPI-from-country-code": "DE",
             "OCPI-from-party-id": "EMS", "OCPI-to-country-code": "NL", "OCPI-to-party-id": "CPO"}
        async with s.get(url, headers=h) as r:
            assert (r.headers["OCPI-to-country-code"], r.headers["OCPI-to-party-id"]) == ("DE", "EMS")
            assert (r.headers["OCPI-from-country-code"], r.headers["OCPI-from-party-id"]) == ("NL", "CPO")
        # Never on configuration modules.
        async with s.get(cpo.config.versions_url, headers=h) as r:
            assert not any(k.lower().startswith("ocpi-") for k in r.headers)


# --- bad input never gets a 500 ---------------------------------------------------------------

GOOD_ROLE = {"role": "EMSP", "party_id": "EMS", "country_code": "DE", "business_details": {"name": "e"}}
BAD_BODIES = {
    "broken_json": (b'{"token": "abc", "url": ', 400, 2000),
    "not_json_at_all": (b"hello", 400, 2000),
    "empty": (b"", 400, 2000),
    "missing_fields": (b'{"token": "abc"}', 200, 2001),
    "wrong_types": (b'{"token": 123, "url": true, "roles": "CPO"}', 200, 2001),
    "over_long_token": (dumps({"token": "x" * 65, "url": "http://127.0.0.1:1/v", "roles": [GOOD_ROLE]}), 200, 2001),
    "over_long_party": (dumps({"token": "abc", "url": "http://127.0.0.1:1/v",
                               "roles": [{**GOOD_ROLE, "party_id": "ABCD"}]}), 200, 2001),
    "enum_wrong_case": (dumps({"token": "abc", "url": "http://127.0.0.1:1/v",
                               "roles": [{**GOOD_ROLE, "role": "emsp"}]}), 200, 2001),
    "json_array": (b"[]", 200, 2001),
    "json_null": (b"null", 200, 2001),
    "bad_timestamp": (dumps({"token": "abc", "url": "http://127.0.0.1:1/v", "roles": [GOOD_ROLE],
                             "last_updated": "2026-01-01T00:00:00+02:00"}), 200, 3001),
}


@pytest.mark.parametrize("kind", list(BAD_BODIES))
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_bad_credentials_bodies(cluster, kind, method):
    cpo, emsp, _, party = await registered_pair(cluster)
    token_a, _ = await cpo.handshake.invite("newcomer")
    body, http_status, code = BAD_BODIES[kind]
    token = token_a if method == "POST" else party.token_out
    status, resp, _ = await call(method, f"{cpo.config.public_url}/ocpi/2.2.1/credentials", token, body)
    assert (status, resp["status_code"]) == (http_status, code), resp
    assert set(resp) >= {"status_code", "timestamp"}
    if code == 2001 and kind not in ("json_array", "json_null"):
        # The message names the field that failed.
        field = {"missing_fields": "url", "wrong_types": "token", "over_long_token": "token",
                 "over_long_party": "party_id", "enum_wrong_case": "role"}[kind]
        assert field in resp["status_message"]
    # A rejected request writes nothing: both the new and the old tokens still work.
    for t in (token_a, party.token_out):
        status, resp, _ = await call("GET", cpo.config.versions_url, t)
        assert (status, resp["status_code"]) == (200, 1000)


@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials", "/ocpi/nope",
                                  "/ocpi/2.2.1/locations"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_every_endpoint_answers_an_envelope(cluster, path, method):
    cpo = await cluster.node("cpo", CPO)
    token_a, _ = await cpo.handshake.invite("x")
    for token in (None, "garbage", token_a):
        for body in (None, b"{", b'{"date_from": "yesterday", "token": 5}'):
            status, resp, _ = await call(method, cpo.config.public_url + path + "?date_from=nonsense&limit=x",
                                         token, body)
            assert status < 500, (method, path, token, body, resp)
            assert isinstance(resp["status_code"], int) and "timestamp" in resp
            if token in (None, "garbage") and status not in (404, 405):
                assert (status, resp["status_code"]) == (401, 2000)


async def test_unknown_fields_tolerated_and_logged_once_per_partner(cluster):
    from tests.fakes import FakePartner

    cpo = await cluster.node("cpo", CPO)
    async with FakePartner() as fake:
        await _unknown_fields(cpo, fake)


async def _unknown_fields(cpo, fake):
    body = {"token": "new-token-b", "url": fake.versions_url, "roles": [
        {**GOOD_ROLE, "business_details": {"name": "e", "x_brand": "z"}}], "hub_party_id": "NLHUB", "x_custom": 1}
    # Registration under a second invitation, twice with the same extras.
    with structlog.testing.capture_logs() as logs:
        for name in ("p1", "p2"):
            token_a, _ = await cpo.handshake.invite(name)
            status, resp, _ = await call("POST", f"{cpo.config.public_url}/ocpi/2.2.1/credentials", token_a,
                                         {**body, "token": f"tok-{name}"})
            assert (status, resp["status_code"]) == (200, 1000)
        cpo_view = await cpo.handshake._registered("p1")
        status, resp, _ = await call("PUT", f"{cpo.config.public_url}/ocpi/2.2.1/credentials",
                                     resp["data"]["token"], {**body, "token": "tok-again"})
        assert resp["status_code"] == 1000
    events = [e for e in logs if e["event"] == "ocpi.unknown_fields_ignored"]
    # Once per partner (p1, p2), not again on p2's PUT.
    assert len(events) == 2
    assert events[0]["fields"] == ["BusinessDetails.x_brand", "Credentials.hub_party_id", "Credentials.x_custom"]
    assert cpo_view.roles == [{"role": "EMSP", "business_details": {"name": "e"}, "party_id": "EMS",
                               "country_code": "DE"}]


async def test_call_log_retention_prunes_old_rows(cluster):
    cpo = await cluster.node("cpo", CPO, serve=False)
    now = datetime.now(UTC)
    for days in (1, 89, 91, 400):
        cpo.call_log.record(CallRecord(direction="in", method="GET", url=f"/age/{days}", duration_ms=1.0,
                                       at=now - timedelta(days=days)))
    await cpo.call_log.flush()
    removed = await calllog.prune(cpo.engine, 90)
    assert removed == 2
    assert sorted(r["url"] for r in await calllog.recent(cpo.engine)) == ["/age/1", "/age/89"]
