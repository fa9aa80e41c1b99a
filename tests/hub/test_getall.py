"""GET All via the Hub (transport_and_format, "GET All via Hubs"): the lists of
every connected party merged, paginated across the merged list."""

import asyncio

import pytest
import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from evroam.client.ocpi import Paging
from evroam.ocpi import headers as H
from evroam.ocpi.headers import Routing
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.store import parties as party_repo
from evroam.store.tables import objects
from tests.builders import cdr_token, location, session
from tests.hubnet import CPO1, CPO2, EMSP1, EMSP2, call, hub_network
from tests.nodes import bind_loopback, wait_for

CPO3 = [("CPO", "DE", "CP3")]
EMSP = ("DE", "EMS")
HUB = ("NL", "HUB")
OLD, NEW = "2025-06-01T00:00:00Z", "2026-03-01T00:00:00Z"


async def three_cpos(cluster, **hub_settings):
    """CPO1 with A1-A3, CPO2 with nothing, CPO3 with C1-C4 (C1 and C2 old), and an eMSP."""
    net = await hub_network(cluster, {"cpo1": CPO1, "cpo2": CPO2, "cpo3": CPO3, "emsp": EMSP1}, **hub_settings)
    for lid in ("A1", "A2", "A3"):
        await net["cpo1"].publish("locations", Location.from_wire(location(lid, "NL", "CPO", updated=NEW)))
    for lid, updated in (("C1", OLD), ("C2", OLD), ("C3", NEW), ("C4", NEW)):
        await net["cpo3"].publish("locations", Location.from_wire(location(lid, "DE", "CP3", updated=updated)))
    return net


async def own_list(net, name: str, to: tuple[str, str], query: str = "") -> list[dict]:
    """The source's list as it serves it itself, asked with the Hub's token."""
    at_hub = await net.at_hub(name)
    url = at_hub.endpoint_url("locations", "SENDER") + query
    status, env, _ = await call("GET", url, at_hub.token_out, frm=EMSP, to=to)
    assert (status, env["status_code"]) == (200, 1000)
    return env["data"]


def link_of(headers: dict[str, str]) -> str:
    value = headers["link"]
    assert value.endswith('>; rel="next"')
    return value[1:-len('>; rel="next"')]


async def test_the_emsp_pages_through_the_merged_list(cluster):
    net = await three_cpos(cluster)
    merged = (await own_list(net, "cpo1", ("NL", "CPO")) + await own_list(net, "cpo2", ("BE", "CP2"))
              + await own_list(net, "cpo3", ("DE", "CP3")))
    assert [(o["country_code"], o["party_id"], o["id"]) for o in merged] == [
        ("NL", "CPO", "A1"), ("NL", "CPO", "A2"), ("NL", "CPO", "A3"),
        ("DE", "CP3", "C1"), ("DE", "CP3", "C2"), ("DE", "CP3", "C3"), ("DE", "CP3", "C4")]
    base = net.url("emsp", "locations", "SENDER", "")
    url, pages = base + "?limit=2", []
    while True:
        status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=HUB)
        assert (status, env["status_code"], env.get("status_message")) == (200, 1000, None)
        assert (headers["x-total-count"], headers["x-limit"]) == ("7", "100")
        assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == HUB
        assert (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]) == EMSP
        pages.append(env["data"])
        if "link" not in headers:
            break
        url = link_of(headers)
        assert url == f"{base}?offset={2 * len(pages)}&limit=2"
    assert [[o["id"] for o in p] for p in pages] == [["A1", "A2"], ["A3", "C1"], ["C2", "C3"], ["C4"]]
    # Every object exactly once, in order, as its owner serves it.
    assert [o for p in pages for o in p] == merged


async def test_a_window_inside_one_source_and_past_the_end(cluster):
    net = await three_cpos(cluster)
    base = net.url("emsp", "locations", "SENDER", "")
    status, env, headers = await call("GET", base + "?offset=4&limit=2", net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, [o["id"] for o in env["data"]]) == (200, ["C2", "C3"])
    assert (headers["x-total-count"], link_of(headers)) == ("7", f"{base}?offset=6&limit=2")
    status, env, headers = await call("GET", base + "?offset=9", net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, env["status_code"], env["data"], headers["x-total-count"]) == (200, 1000, [], "7")
    assert "link" not in headers
    # A limit above the Hub's page limit is capped to it.
    status, env, headers = await call("GET", base + "?limit=500", net.token("emsp"), frm=EMSP, to=HUB)
    assert (len(env["data"]), headers["x-limit"], "link" in headers) == (7, "100", False)


async def test_the_limit_is_capped_by_the_hubs_page_limit(cluster):
    net = await three_cpos(cluster, page_limit=3)
    base = net.url("emsp", "locations", "SENDER", "")
    status, env, headers = await call("GET", base + "?limit=50", net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, [o["id"] for o in env["data"]]) == (200, ["A1", "A2", "A3"])
    assert (headers["x-total-count"], headers["x-limit"]) == ("7", "3")
    assert link_of(headers) == f"{base}?offset=3&limit=3"


async def test_date_from_is_passed_on_to_every_source(cluster):
    net = await three_cpos(cluster)
    base = net.url("emsp", "locations", "SENDER", "")
    query = "?date_from=2026-01-01T00:00:00Z&limit=3"
    status, env, headers = await call("GET", base + query, net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, [o["id"] for o in env["data"]]) == (200, ["A1", "A2", "A3"])
    assert headers["x-total-count"] == "5"  # C1 and C2 are older than date_from
    assert link_of(headers) == f"{base}?date_from=2026-01-01T00%3A00%3A00Z&offset=3&limit=3"
    status, env, headers = await call("GET", link_of(headers), net.token("emsp"), frm=EMSP, to=HUB)
    assert env["data"] == await own_list(net, "cpo3", ("DE", "CP3"), "?date_from=2026-01-01T00:00:00Z")
    assert ([o["id"] for o in env["data"]], headers["x-total-count"], "link" in headers) == (["C3", "C4"], "5", False)


async def set_at_hub(net, name: str, **values) -> None:
    party = await net.at_hub(name)
    async with net.hub.engine.begin() as conn:
        await party_repo.update(conn, party.id, **values)
    net.hub.hub.directory.invalidate()


async def test_an_offline_source_is_left_out(cluster):
    net = await three_cpos(cluster)
    await set_at_hub(net, "cpo1", hub_status="OFFLINE")
    base = net.url("emsp", "locations", "SENDER", "")
    status, env, headers = await call("GET", base + "?limit=2", net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, env["status_code"], env.get("status_message")) == (200, 1000, None)
    assert ([o["id"] for o in env["data"]], headers["x-total-count"]) == (["C1", "C2"], "4")
    assert link_of(headers) == f"{base}?offset=2&limit=2"


async def test_a_failing_source_is_skipped_and_named(cluster):
    net = await three_cpos(cluster)
    token = (await net.at_hub("cpo1")).token_out
    await set_at_hub(net, "cpo1", token_out="not-the-token")  # cpo1 now answers the Hub 401
    base = net.url("emsp", "locations", "SENDER", "")
    status, env, headers = await call("GET", base + "?limit=2", net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, env["status_code"]) == (200, 1000)
    assert env["status_message"] == "parties left out: NL/CPO (HTTP 401, OCPI 2000)"
    assert ([o["id"] for o in env["data"]], headers["x-total-count"]) == (["C1", "C2"], "4")
    # A failing source after the window (asked only for its count) is named too.
    await set_at_hub(net, "cpo1", token_out=token)
    await set_at_hub(net, "cpo3", token_out="not-the-token")
    status, env, headers = await call("GET", base + "?limit=1", net.token("emsp"), frm=EMSP, to=HUB)
    assert env["status_message"] == "parties left out: DE/CP3 (HTTP 401, OCPI 2000)"
    assert ([o["id"] for o in env["data"]], headers["x-total-count"]) == (["A1"], "3")


async def test_malformed_offset_or_limit_is_2001_as_our_own_senders_answer(cluster):
    net = await three_cpos(cluster)
    base = net.url("emsp", "locations", "SENDER", "")
    at_hub = await net.at_hub("cpo1")
    own = at_hub.endpoint_url("locations", "SENDER")
    for query, message in (("?offset=x", "offset: must be an integer, got 'x'"),
                           ("?limit=0", "limit: must be positive"),
                           ("?offset=-1", "offset: must not be negative"),
                           ("?date_from=yesterday", None)):
        status, env, headers = await call("GET", base + query, net.token("emsp"), frm=EMSP, to=HUB)
        theirs = await call("GET", own + query, at_hub.token_out, frm=EMSP, to=("NL", "CPO"))
        assert (status, env["status_code"], "data" in env) == (theirs[0], 2001, False) == (200, 2001, False)
        assert env["status_message"] == theirs[1]["status_message"]
        if message is not None:
            assert env["status_message"] == message
        assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == HUB
        assert (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]) == EMSP



async def test_the_emsps_client_follows_the_merged_link_to_the_end(cluster):
    net = await three_cpos(cluster, page_limit=2)
    emsp, hub = net["emsp"], net.hub_at["emsp"]
    paging = Paging()
    pages = [[o["id"] for o in page] async for page in emsp.client.paginate(
        net.url("emsp", "locations", "SENDER", ""), hub.token_out, paging=paging, routing=Routing(*EMSP, *HUB))]
    assert pages == [["A1", "A2"], ["A3", "C1"], ["C2", "C3"], ["C4"]]
    assert (paging.total, paging.fallback) == (7, None)


async def test_the_emsps_own_pull_through_the_hub_stores_every_owner(cluster):
    net = await three_cpos(cluster)
    emsp = net["emsp"]
    result = await emsp.pull(net.hub_at["emsp"].name, "locations", full=True)
    assert (result.error, result.stored, result.foreign) == (None, 7, 0)
    async with emsp.engine.connect() as conn:
        rows = (await conn.execute(sa.select(objects.c.cc_key, objects.c.pid_key, objects.c.oid_key)
                                   .where(objects.c.module == "locations"))).all()
    # Sorted: the CPOs' own broadcasts through the Hub may have delivered some first, in any order.
    assert sorted(tuple(r) for r in rows) == [("DE", "CP3", "C1"), ("DE", "CP3", "C2"), ("DE", "CP3", "C3"),
                                              ("DE", "CP3", "C4"), ("NL", "CPO", "A1"), ("NL", "CPO", "A2"),
                                              ("NL", "CPO", "A3")]


async def test_sessions_need_date_from_as_at_every_cpo(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "emsp": EMSP1})
    status, env, _ = await call("GET", net.url("emsp", "sessions", "SENDER", ""), net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, env["status_code"], env["status_message"]) == (200, 2001, "date_from: required for this list")


async def test_a_source_shows_each_emsp_only_its_own_sessions(cluster):
    net = await hub_network(cluster, {"cpo1": CPO1, "cpo3": CPO3, "emsp": EMSP1, "emsp2": EMSP2})
    for name, cc, pid in (("cpo1", "NL", "CPO"), ("cpo3", "DE", "CP3")):
        for sid, token in (("S-EMS", cdr_token("DE", "EMS")), ("S-EM2", cdr_token("FR", "EM2"))):
            await net[name].publish("sessions", Session.from_wire(session(f"{sid}-{pid}", cc, pid, token=token)))
    url = net.url("emsp", "sessions", "SENDER", "") + "?date_from=2020-01-01T00:00:00Z"
    status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=HUB)
    assert (status, env["status_code"], headers["x-total-count"]) == (200, 1000, "2")
    assert [(o["party_id"], o["id"]) for o in env["data"]] == [("CPO", "S-EMS-CPO"), ("CP3", "S-EMS-CP3")]


class OddSource:
    """A Locations Sender on real HTTP that pages oddly: `no_total` sends no
    X-Total-Count (two objects a page, a Link while there are more);
    `ignores` sends its whole list whatever offset and limit say; `hangs`
    answers only when the test ends."""

    def __init__(self, mode: str, ids: list[str]) -> None:
        self.mode = mode
        self.objects = [location(i, "BE", "CP2", updated=NEW) for i in ids]
        self.asked: list[dict[str, str]] = []
        self.release = asyncio.Event()
        self.sock = bind_loopback()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/locations"

    async def _list(self, request):
        q = dict(request.query_params)
        h = request.headers
        self.asked.append({**q, "authorization": h["authorization"], "correlation": h["x-correlation-id"],
                           "from": f"{h['ocpi-from-country-code']}/{h['ocpi-from-party-id']}",
                           "to": f"{h['ocpi-to-country-code']}/{h['ocpi-to-party-id']}"})
        body = {"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}
        if self.mode == "hangs":
            await self.release.wait()
        if self.mode == "ignores":
            body["data"] = self.objects
            return JSONResponse(body, headers={"X-Total-Count": str(len(self.objects))})
        offset, limit = int(q.get("offset", 0)), min(int(q.get("limit", 2)), 2)
        body["data"] = self.objects[offset:offset + limit]
        more = offset + limit < len(self.objects)
        return JSONResponse(body, headers={"Link": f'<{self.url}?offset={offset + limit}>; rel="next"'} if more else {})

    async def __aenter__(self):
        app = Starlette(routes=[Route("/locations", self._list)])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        await wait_for(lambda: self._server.started, what="the odd source to serve")
        return self

    async def __aexit__(self, *exc):
        self.release.set()
        self._server.should_exit = True
        await self._task


async def behind(net, name: str, source: OddSource) -> None:
    """`name`'s Locations Sender, as the Hub knows it, is now `source`."""
    party = await net.at_hub(name)
    endpoints = [e for e in party.endpoints if (e["identifier"], e["role"]) != ("locations", "SENDER")]
    await set_at_hub(net, name, endpoints=[*endpoints, {"identifier": "locations", "role": "SENDER",
                                                        "url": source.url}])


async def pages_of(net, limit: int) -> tuple[list[list[str]], set[str]]:
    """The ids of every page, following Link, and every X-Total-Count seen."""
    url, pages, totals = net.url("emsp", "locations", "SENDER", "") + f"?limit={limit}", [], set()
    while url:
        status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=HUB)
        assert (status, env["status_code"], env.get("status_message")) == (200, 1000, None)
        pages.append([o["id"] for o in env["data"]])
        totals.add(headers["x-total-count"])
        url = link_of(headers) if "link" in headers else None
    return pages, totals


@pytest.mark.parametrize("mode", ["no_total", "ignores"])
async def test_a_source_that_pages_oddly_is_tolerated(cluster, mode):
    net = await three_cpos(cluster)
    async with OddSource(mode, ["B1", "B2", "B3"]) as odd:
        await behind(net, "cpo2", odd)
        for limit, expected in ((2, [["A1", "A2"], ["A3", "B1"], ["B2", "B3"], ["C1", "C2"], ["C3", "C4"]]),
                                (4, [["A1", "A2", "A3", "B1"], ["B2", "B3", "C1", "C2"], ["C3", "C4"]]),
                                (1, [[i] for i in ("A1", "A2", "A3", "B1", "B2", "B3", "C1", "C2", "C3", "C4")])):
            assert await pages_of(net, limit) == (expected, {"10"})
        # Asked with its own token, FROM = the eMSP, TO = itself, the caller's correlation id;
        # on the first page it is after the window, asked only for its count.
        token = H.encode_token((await net.at_hub("cpo2")).token_out)
        # Only this test's GET Alls (the eMSP's own reconnect pull, hub_reconnect_pull_s after
        # the source's ClientInfo said CONNECTED, may ask it too on a slow machine).
        ours = [a for a in odd.asked if a["correlation"] == "corr-1"]
        assert ours[0] == {"offset": "0", "limit": "1", "authorization": token, "correlation": "corr-1",
                           "from": "DE/EMS", "to": "BE/CP2"}


async def test_a_source_with_a_smaller_page_limit_is_asked_on(cluster):
    net = await three_cpos(cluster)
    net["cpo3"].app.state.ctx.page_limit = 1
    assert await pages_of(net, 3) == ([["A1", "A2", "A3"], ["C1", "C2", "C3"], ["C4"]], {"7"})


async def test_a_source_that_times_out_is_left_out(cluster):
    net = await three_cpos(cluster, hub_forward_timeout_s=0.5)
    async with OddSource("hangs", ["B1"]) as odd:
        await behind(net, "cpo2", odd)
        base = net.url("emsp", "locations", "SENDER", "")
        for query, ids in (("?limit=4", ["A1", "A2", "A3", "C1"]), ("?limit=2", ["A1", "A2"])):
            status, env, headers = await call("GET", base + query, net.token("emsp"), frm=EMSP, to=HUB)
            assert (status, env["status_code"], [o["id"] for o in env["data"]]) == (200, 1000, ids)
            assert (env["status_message"], headers["x-total-count"]) == (
                "parties left out: BE/CP2 (no answer within 0.5 s)", "7")
