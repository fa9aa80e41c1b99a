"""Direct routing through the Hub (transport_and_format, "Party to Party via
Hub"): the header rules on both sides, bodies and statuses passed through,
URLs in answers and callback URLs rewritten through the Hub, and the hub
errors 4000-4003."""

from __future__ import annotations

import asyncio
import base64
import json
from contextlib import asynccontextmanager
from urllib.parse import urlencode

from evroam.modules.events import ChargingProfileEvent, CommandEvent
from evroam.ocpi.chargingprofiles import (ActiveChargingProfile, ChargingProfileResponse,
                                          ChargingProfileResponseType, ChargingProfileResultType)
from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandResultType, CommandType
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.tokens import Token
from evroam.pricing import build_cdr
from evroam.modules.sessions import owner as ops
from evroam.store import calllog
from evroam.store import objects as repo
from evroam.store import parties as party_repo
from evroam.store import tracking
from evroam.store.objects import ObjectKey
from evroam.sync import tracker
from tests import charging
from tests.builders import location, session, token
from tests.charging import two_evse_location
from tests.hubnet import CPO1, EMSP1, Net, call, hub_network
from tests.nodes import wait_for

CPO, EMSP, HUB = ("NL", "CPO"), ("DE", "EMS"), ("NL", "HUB")
ACTIVE = {"start_date_time": "2026-01-01T10:00:00Z", "charging_profile": {
    "charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 16}]}}


class Heard:
    """The requests a node's app received, with their headers: what the
    receiving side saw of a forwarded request."""

    def __init__(self, node) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        app = node.app
        inner = app.middleware_stack or app.build_middleware_stack()

        async def heard(scope, receive, send):
            if scope["type"] == "http":
                self.requests.append((scope["method"], scope["path"], {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}))
            await inner(scope, receive, send)

        app.middleware_stack = heard

    def last(self, method: str, path_end: str) -> dict[str, str]:
        found = [h for m, p, h in self.requests if m == method and p.rstrip("/").endswith(path_end)]
        assert found, (method, path_end, [(m, p) for m, p, _ in self.requests])
        return found[-1]


def routing_of(headers: dict[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    """(FROM, TO) of a request's or an answer's headers."""
    return ((headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]),
            (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]))


def assert_forwarded(seen: dict[str, str], frm, to) -> None:
    """The header rules of the leg from the Hub: TO and FROM as the caller
    sent them, a new X-Request-ID, the same X-Correlation-ID."""
    assert routing_of(seen) == (frm, to)
    assert seen["x-request-id"] not in ("", "req-1")
    assert seen["x-correlation-id"] == "corr-1"


async def logged_in(node, hub_party, path_end: str) -> dict:
    """The receiving node's call log row of the forwarded request."""
    async def row():
        rows = await calllog.recent(node.engine, party_id=hub_party.id, limit=50)
        return next((r for r in rows if r["direction"] == "in" and r["url"].split("?")[0].endswith(path_end)), None)

    await wait_for(row, what=f"the call log row of {path_end}")
    return await row()


async def held_at(node, module: str, owner, cc: str, pid: str, oid: str) -> dict | None:
    async with node.engine.connect() as conn:
        stored = await repo.get(conn, ObjectKey(module, owner.id, cc, pid, oid))
    return json.loads(stored.data) if stored is not None else None


def assert_hub_error(status, env, headers, http: int, code: int, to=EMSP) -> None:
    assert (status, env["status_code"]) == (http, code), env
    assert "data" not in env or env["data"] is None
    assert routing_of(headers) == (HUB, to)


# --- direct routing, both sides ---------------------------------------------------------------------


async def test_sender_get_one_is_forwarded_with_the_header_rules(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    heard = Heard(net["cpo"])
    await net["cpo"].publish("locations", Location.from_wire(location("L1")))
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
    assert (status, env["status_code"], env["data"]) == (200, 1000, location("L1"))
    assert routing_of(headers) == (CPO, EMSP)
    assert (headers["x-request-id"], headers["x-correlation-id"]) == ("req-1", "corr-1")
    # The CPO's side: called with its own token for the Hub, TO and FROM as sent.
    seen = heard.last("GET", "/sender/locations/L1")
    assert_forwarded(seen, EMSP, CPO)
    row = await logged_in(net["cpo"], net.hub_at["cpo"], "/sender/locations/L1")
    assert (row["request_id"], row["correlation_id"], row["http_status"]) == (seen["x-request-id"], "corr-1", 200)


async def test_link_header_of_a_sender_list_comes_back_through_the_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    for lid in ("L1", "L2"):
        await net["cpo"].publish("locations", Location.from_wire(location(lid)))
    hub_list = net.url("emsp", "locations", "SENDER").rstrip("/")
    status, env, headers = await call("GET", hub_list + "?limit=1", net.token("emsp"), frm=EMSP, to=CPO)
    assert (status, env["status_code"], [d["id"] for d in env["data"]]) == (200, 1000, ["L1"])
    assert (headers["x-total-count"], headers["x-limit"]) == ("2", "100")  # X-Limit: the server's maximum
    assert headers["link"] == f'<{hub_list}?offset=1&limit=1>; rel="next"'
    nxt = headers["link"][1:headers["link"].index(">")]
    status, env, headers = await call("GET", nxt, net.token("emsp"), frm=EMSP, to=CPO)
    assert (status, env["status_code"], [d["id"] for d in env["data"]]) == (200, 1000, ["L2"])
    assert "link" not in headers


async def test_receiver_put_and_patch_reach_the_emsp_under_the_cpos_keys(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    heard = Heard(net["emsp"])
    emsp, hub_at_emsp = net["emsp"], net.hub_at["emsp"]
    url = net.url("cpo", "locations", "RECEIVER", "NL", "CPO", "L1")
    doc = location("L1", updated="2026-01-01T00:00:00Z")
    status, env, headers = await call("PUT", url, net.token("cpo"), frm=CPO, to=EMSP,
                                      body=json.dumps(doc).encode())
    assert (status, env["status_code"]) == (201, 1000), env
    assert routing_of(headers) == (EMSP, CPO)
    assert_forwarded(heard.last("PUT", "/receiver/locations/NL/CPO/L1"), CPO, EMSP)
    assert await held_at(emsp, "locations", hub_at_emsp, "NL", "CPO", "L1") == doc
    patch = {"name": "Renamed", "last_updated": "2026-01-02T03:04:05Z"}
    status, env, headers = await call("PATCH", url, net.token("cpo"), frm=CPO, to=EMSP,
                                      body=json.dumps(patch).encode())
    assert (status, env["status_code"]) == (200, 1000), env
    assert routing_of(headers) == (EMSP, CPO)
    assert_forwarded(heard.last("PATCH", "/receiver/locations/NL/CPO/L1"), CPO, EMSP)
    # The Hub left last_updated as the CPO set it.
    assert await held_at(emsp, "locations", hub_at_emsp, "NL", "CPO", "L1") == {**doc, **patch}
    row = await logged_in(emsp, hub_at_emsp, "/receiver/locations/NL/CPO/L1")
    assert row["request_id"] != "req-1" and row["correlation_id"] == "corr-1"
    # A Location the eMSP does not hold: its own answer (404, 2000), passed back.
    other = net.url("cpo", "locations", "RECEIVER", "NL", "CPO", "NOPE")
    status, env, headers = await call("PATCH", other, net.token("cpo"), frm=CPO, to=EMSP,
                                      body=json.dumps(patch).encode())
    assert (status, env["status_code"]) == (404, 2000)
    assert routing_of(headers) == (EMSP, CPO)


def priced_cdr():
    s = Session.from_wire(charging.session("S1", status="COMPLETED", end_date_time=charging.ts(100),
                                           periods=[charging.period(0, 20)]))
    loc = Location.from_wire(charging.location())
    cdr, _ = build_cdr(s, Tariff.from_wire(charging.tariff()), ops.cdr_location(loc, s.evse_uid, "1"),
                       time_zone=loc.time_zone)
    return cdr


async def test_cdr_post_location_header_is_followed_back_through_the_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    heard = Heard(net["emsp"])
    wire = json.loads(priced_cdr().to_json_bytes())
    hub_cdrs = net.url("cpo", "cdrs", "RECEIVER").rstrip("/")
    status, env, headers = await call("POST", hub_cdrs, net.token("cpo"), frm=CPO, to=EMSP,
                                      body=json.dumps(wire).encode())
    assert (status, env["status_code"]) == (201, 1000), env
    assert routing_of(headers) == (EMSP, CPO)
    assert headers["location"] == f"{hub_cdrs}/NL/CPO/S1"
    assert_forwarded(heard.last("POST", "/receiver/cdrs"), CPO, EMSP)
    assert await held_at(net["emsp"], "cdrs", net.hub_at["emsp"], "NL", "CPO", "S1") == wire
    status, env, headers = await call("GET", headers["location"], net.token("cpo"), frm=CPO, to=EMSP)
    assert (status, env["status_code"], env["data"]) == (200, 1000, wire)
    assert routing_of(headers) == (EMSP, CPO)
    assert_forwarded(heard.last("GET", "/receiver/cdrs/NL/CPO/S1"), CPO, EMSP)


async def test_authorize_through_the_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    heard = Heard(net["emsp"])
    await net["emsp"].publish("tokens", Token.from_wire(token("APP-42")))
    url = net.url("cpo", "tokens", "SENDER", "APP-42", "authorize") + "?type=APP_USER"
    body = json.dumps({"location_id": "LOC1"}).encode()
    status, env, headers = await call("POST", url, net.token("cpo"), frm=CPO, to=EMSP, body=body)
    assert (status, env["status_code"]) == (200, 1000), env
    assert (env["data"]["allowed"], env["data"]["token"], env["data"]["location"]) == (
        "ALLOWED", token("APP-42"), {"location_id": "LOC1"})
    assert routing_of(headers) == (EMSP, CPO)
    assert_forwarded(heard.last("POST", "/sender/tokens/APP-42/authorize"), CPO, EMSP)
    status, env, _ = await call("POST", url.replace("APP-42", "NOPE"), net.token("cpo"), frm=CPO, to=EMSP, body=body)
    assert (status, env["status_code"]) == (404, 2004)


# --- callback URLs ------------------------------------------------------------------------------------


def hub_callback(net: Net, requester: tuple[str, str], original: str) -> str:
    b64 = base64.urlsafe_b64encode(original.encode()).rstrip(b"=").decode()
    return f"{net.hub.config.public_url}/ocpi/2.2.1/hub/callback/{requester[0]}/{requester[1]}/{b64}"


async def tracked_command(net: Net, command_type: str = "START_SESSION", kind: str = "commands",
                          ref: str = "LOC1") -> tuple[str, str]:
    """A request as the eMSP records it before sending it through the Hub:
    (its tracking id, its response_url)."""
    emsp = net["emsp"]
    uid = tracker.new_uid()
    url = tracker.response_url(emsp.config.public_url, kind, command_type, uid)
    async with emsp.engine.begin() as conn:
        await tracking.insert(conn, uid=uid, direction=tracking.OUT, kind=kind, type_=command_type,
                              party_id=net.hub_at["emsp"].id, ref=ref, response_url=url, request="{}")
    return uid, url


async def test_start_session_command_and_its_result_through_the_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    cpo, emsp = net["cpo"], net["emsp"]
    await cpo.publish("locations", Location.from_wire(two_evse_location()))
    cpo_heard, emsp_heard = Heard(cpo), Heard(emsp)
    seen = {}

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        seen.update(command=command, handle=handle)
        seen["task"] = await handle.result(CommandResultType.ACCEPTED)
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

    results = []

    @emsp.on(CommandEvent.RESULT)
    async def on_result(t, partner):
        results.append((t.id, t.result, partner.name))

    uid, response_url = await tracked_command(net)
    body = {"response_url": response_url, "token": token(), "location_id": "LOC1", "evse_uid": "E1"}
    url = net.url("emsp", "commands", "RECEIVER", "START_SESSION")
    status, env, headers = await call("POST", url, net.token("emsp"), frm=EMSP, to=CPO,
                                      body=json.dumps(body).encode())
    assert (status, env["status_code"], env["data"]) == (200, 1000, {"result": "ACCEPTED", "timeout": 30})
    assert routing_of(headers) == (CPO, EMSP)
    # The CPO got the command with the Hub's callback URL, the rest untouched.
    rewritten = hub_callback(net, EMSP, response_url)
    assert seen["command"].response_url == rewritten
    row = await logged_in(cpo, net.hub_at["cpo"], "/receiver/commands/START_SESSION")
    assert json.loads(row["request_body"]) == {**body, "response_url": rewritten}
    assert_forwarded(cpo_heard.last("POST", "/receiver/commands/START_SESSION"), EMSP, CPO)
    # The result went to the Hub's URL and on to the eMSP's, to the command it belongs to.
    assert await seen["task"] is True
    await wait_for(lambda: results, what="the result at the eMSP")
    assert results == [(uid, "ACCEPTED", net.hub_at["emsp"].name)]
    t = await emsp.command(uid)
    assert (t.state, t.result) == ("COMPLETED", "ACCEPTED")
    back = emsp_heard.last("POST", f"/sender/commands/START_SESSION/{uid}")
    assert routing_of(back) == (CPO, EMSP)
    assert back["x-request-id"] != seen["handle"].id


async def test_active_charging_profile_query_response_url_through_the_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    cpo, emsp = net["cpo"], net["emsp"]
    await cpo.publish("locations", Location.from_wire(two_evse_location()))
    await cpo.publish("sessions", Session.from_wire(session("S1")))
    seen = []

    @cpo.on(ChargingProfileEvent.GET_ACTIVE)
    async def get_active(req, handle):
        seen.append(req)
        await handle.result(ChargingProfileResultType.ACCEPTED, profile=ActiveChargingProfile.from_wire(ACTIVE))
        return ChargingProfileResponse(result=ChargingProfileResponseType.ACCEPTED, timeout=30)

    uid, response_url = await tracked_command(net, "GET_ACTIVE", "chargingprofiles", "S1")
    url = net.url("emsp", "chargingprofiles", "RECEIVER", "S1") + "?" + urlencode(
        {"duration": "900", "response_url": response_url})
    status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
    assert (status, env["status_code"], env["data"]) == (200, 1000, {"result": "ACCEPTED", "timeout": 30})
    assert routing_of(headers) == (CPO, EMSP)
    assert (seen[0].duration, seen[0].response_url) == (900, hub_callback(net, EMSP, response_url))
    await wait_for(lambda: state_is(emsp, uid, "COMPLETED"), what="the result at the eMSP")
    assert (await emsp.command(uid)).to_dict()["result_data"] == {"result": "ACCEPTED", "profile": ACTIVE}


async def state_is(node, uid: str, state: str) -> bool:
    t = await node.command(uid)
    return t is not None and t.state == state


async def test_the_callback_refuses_anything_but_the_requesters_own_server(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    result = json.dumps({"result": "ACCEPTED"}).encode()
    _, own = await tracked_command(net)
    cases = [
        # Another port of the same host: not the eMSP's server, never an open proxy.
        (hub_callback(net, EMSP, "http://127.0.0.1:9/ocpi/x"), "POST", 400, 2001, "not on the requesting"),
        # Someone else's server, filed under the eMSP's keys.
        (hub_callback(net, EMSP, net.hub.config.public_url + "/ocpi/versions"), "POST", 400, 2001,
         "not on the requesting"),
        (hub_callback(net, EMSP, "ftp://nowhere"), "POST", 400, 2001, "names no URL"),
        (hub_callback(net, EMSP, own).rsplit("/", 1)[0] + "/%21%21", "POST", 400, 2001, "names no URL"),
        (hub_callback(net, ("XX", "NOP"), own), "POST", 404, 4001, "unknown receiver XX/NOP"),
        (hub_callback(net, EMSP, own), "GET", 405, 2000, "POST only"),
    ]
    for url, method, http, code, words in cases:
        status, env, headers = await call(method, url, net.token("cpo"), frm=CPO, body=result)
        assert (status, env["status_code"]) == (http, code), (url, env)
        assert words in env["status_message"], env["status_message"]
        assert routing_of(headers) == (HUB, CPO)
    # A FROM that is not the caller's own role, and no token of ours.
    status, env, _ = await call("POST", hub_callback(net, EMSP, own), net.token("cpo"), frm=EMSP, body=result)
    assert (status, env["status_code"]) == (400, 2001)
    status, env, _ = await call("POST", hub_callback(net, EMSP, own), "not-a-token", frm=CPO, body=result)
    assert (status, env["status_code"]) == (401, 2000)


async def test_a_callback_url_too_long_through_the_hub_is_4000(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    await net["cpo"].publish("locations", Location.from_wire(two_evse_location()))
    long_url = f"{net['emsp'].config.public_url}/ocpi/2.2.1/sender/commands/START_SESSION/{'x' * 150}"
    body = {"response_url": long_url, "token": token(), "location_id": "LOC1"}
    url = net.url("emsp", "commands", "RECEIVER", "START_SESSION")
    status, env, headers = await call("POST", url, net.token("emsp"), frm=EMSP, to=CPO,
                                      body=json.dumps(body).encode())
    assert_hub_error(status, env, headers, 502, 4000)
    assert "over the 255" in env["status_message"]


# --- hub errors ---------------------------------------------------------------------------------------


async def test_unknown_receiver_is_4001_from_the_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=("XX", "NOP"))
    assert_hub_error(status, env, headers, 404, 4001)
    assert env["status_message"].startswith("unknown receiver XX/NOP")


async def test_a_forged_from_is_refused(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, _ = await call("GET", url, net.token("emsp"), frm=CPO, to=CPO)
    assert (status, env["status_code"]) == (400, 2001)
    assert "not one of your registered roles" in env["status_message"]


async def test_the_hub_judges_the_callers_token_and_roles_afresh_on_every_request(cluster):
    """The Hub reads the caller's token by the hot path's point read and keeps
    the caller's row between requests: a role changed or a token removed by
    any process sharing the database counts at the very next request."""
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    await net["cpo"].publish("locations", Location.from_wire(location("L1")))
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, _ = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
    assert (status, env["status_code"]) == (200, 1000)
    emsp = await net.at_hub("emsp")
    async with net.hub.engine.begin() as conn:
        await party_repo.update(conn, emsp.id, roles=[{**emsp.roles[0], "party_id": "EMX"}])
    status, env, _ = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
    assert (status, env["status_code"]) == (400, 2001)
    assert "which is not one of your registered roles (DE/EMX)" in env["status_message"]
    async with net.hub.engine.begin() as conn:
        await party_repo.drop_tokens(conn, emsp.id)
    status, env, _ = await call("GET", url, net.token("emsp"), frm=("DE", "EMX"), to=CPO)
    assert (status, env["status_code"], env["status_message"]) == (401, 2000, "unknown credentials token")


async def set_hub_status(net: Net, name: str, status: str | None) -> None:
    party = await net.at_hub(name)
    async with net.hub.engine.begin() as conn:
        await party_repo.update(conn, party.id, hub_status=status)
    net.hub.hub.directory.invalidate()


async def test_offline_or_suspended_receiver_is_4003(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    await net["cpo"].publish("locations", Location.from_wire(location("L1")))
    url = net.url("emsp", "locations", "SENDER", "L1")
    for hub_status in ("OFFLINE", "SUSPENDED"):
        await set_hub_status(net, "cpo", hub_status)
        status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
        assert_hub_error(status, env, headers, 502, 4003)
        assert env["status_message"] == f"receiver NL/CPO is {hub_status}"
    await set_hub_status(net, "cpo", "CONNECTED")
    status, env, _ = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
    assert (status, env["status_code"]) == (200, 1000)


async def test_a_receiver_that_cannot_be_reached_is_4003(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    cpo = net["cpo"]
    await cpo.stop()
    cluster.nodes.remove(cpo)
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
    assert_hub_error(status, env, headers, 502, 4003)
    assert env["status_message"].startswith("could not reach NL/CPO")


@asynccontextmanager
async def sink(answer: bytes | None):
    """A server on its own port that reads a request and then sends `answer`
    (raw bytes) and hangs up, or with None never answers."""
    release = asyncio.Event()

    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            await release.wait()
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        release.set()
        server.close()


async def served_by(net: Net, name: str, base: str) -> None:
    """Party `name`'s endpoints, as the Hub knows them, moved to `base`."""
    party = await net.at_hub(name)
    endpoints = [{**e, "url": f"{base}/ocpi/2.2.1/{e['role'].lower()}/{e['identifier']}/"} for e in party.endpoints]
    async with net.hub.engine.begin() as conn:
        await party_repo.update(conn, party.id, endpoints=endpoints)
    net.hub.hub.directory.invalidate()


async def test_a_slow_receiver_is_4002_after_hub_forward_timeout_s(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1}, hub_forward_timeout_s=0.5)
    url = net.url("emsp", "locations", "SENDER", "L1")
    async with sink(None) as base:
        await served_by(net, "cpo", base)
        started = asyncio.get_running_loop().time()
        status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
        waited = asyncio.get_running_loop().time() - started
    assert_hub_error(status, env, headers, 504, 4002)
    assert env["status_message"] == "NL/CPO did not answer within 0.5 s (hub_forward_timeout_s)"
    assert 0.5 <= waited < 5


async def test_a_receiver_answering_no_http_is_4000(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    url = net.url("emsp", "locations", "SENDER", "L1")
    async with sink(b"this is not HTTP\r\n\r\n") as base:
        await served_by(net, "cpo", base)
        status, env, headers = await call("GET", url, net.token("emsp"), frm=EMSP, to=CPO)
    assert_hub_error(status, env, headers, 502, 4000)
    assert env["status_message"].startswith("no usable answer from NL/CPO")
