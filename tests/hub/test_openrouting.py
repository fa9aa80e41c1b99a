"""Open Routing through the Hub: no OCPI-to, the Hub picks the receiver from
the content (transport_and_format, "Open Routing Request"; one test per rule
of docs/hub/open-routing.md).

The parties are sinks (tests/hubsink.py) registered by the handshake: each
records exactly what the Hub sent it and answers with an envelope naming
itself, so each test checks both legs: the receiver got TO = the chosen
party and FROM = the original client; the client got the receiver's answer
with TO = itself and FROM = the receiver.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from evroam.hub.layer import Answer
from evroam.hub.rewrite import callback_url
from evroam.node import Node
from evroam.ocpi import headers as H
from evroam.store import objects as repo
from evroam.store import parties as party_repo
from evroam.store.tables import hub_routes
from tests.builders import cdr_token, location, session, token
from tests.hubnet import HUB, call
from tests.hubsink import Sink, sinks_at
from tests.partners import party_named

PARTIES = {"cpo": [("CPO", "NL", "CPO")], "cpo2": [("CPO", "BE", "CP2")],
           "emsp": [("EMSP", "DE", "EMS")], "emsp2": [("EMSP", "FR", "EM2")]}
ADDRESS_IT = "; address the receiver in OCPI-to-country-code and OCPI-to-party-id"


@dataclass
class Net:
    hub: Node
    sinks: dict[str, Sink]

    def __getitem__(self, name: str) -> Sink:
        return self.sinks[name]


@pytest.fixture
async def net(cluster):
    hub = await cluster.node("hub", HUB)
    sinks: dict[str, Sink] = {}
    try:
        sinks.update(await sinks_at(hub, PARTIES))
        yield Net(hub, sinks)
    finally:
        for s in sinks.values():
            await s.close()


async def open_call(net: Net, client: str, method: str, module: str, iface: str, *path: str,
                    body: dict | None = None, query: str = "", to=None):
    """`client` calls the Hub without OCPI-to (unless `to`)."""
    sink = net[client]
    url = sink.hub_url(module, iface, *path) + (f"?{query}" if query else "")
    raw = json.dumps(body).encode() if body is not None else None
    return await call(method, url, sink.token_hub, frm=sink.key, to=to, body=raw)


def routing_of(headers: dict[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    """(TO, FROM) of a message's headers."""
    return ((headers.get("ocpi-to-country-code"), headers.get("ocpi-to-party-id")),
            (headers.get("ocpi-from-country-code"), headers.get("ocpi-from-party-id")))


def assert_routed(net: Net, answer, client: str, receiver: str, method: str, path: str,
                  body: dict | None = None, query: str = "") -> None:
    """The one request reached `receiver` only, as the spec's Open Routing
    table says, and its answer came back to `client` untouched."""
    status, env, headers = answer
    rcv, cli = net[receiver], net[client]
    assert (status, env) == (200, rcv.envelope(path))
    assert routing_of(headers) == (cli.key, rcv.key)
    assert headers["x-correlation-id"] == "corr-1"
    for name, sink in net.sinks.items():
        assert sink.functional() == [] or name == receiver, (name, sink.functional())
    [seen] = rcv.functional()
    # A response_url comes back through the Hub (hub/rewrite.py): rewritten
    # to the Hub's callback for the client, in the body or in the query.
    via_hub = {"response_url": lambda url: callback_url(net.hub.config.public_url, "2.2.1", cli.key, url)}
    if "response_url=" in query:
        query = urlencode([(k, via_hub[k](v) if k in via_hub else v) for k, v in parse_qsl(query)])
    if body is not None and "response_url" in body:
        body = {**body, "response_url": via_hub["response_url"](body["response_url"])}
        assert json.loads(seen.body) == body
        body = None
        seen_body = b""
    else:
        seen_body = seen.body
    assert (seen.method, seen.path, parse_qsl(seen.query)) == (method, path, parse_qsl(query))
    assert routing_of(seen.headers) == (rcv.key, cli.key)
    assert seen.headers["x-correlation-id"] == "corr-1"
    assert seen.headers["x-request-id"] not in ("", "req-1")
    assert seen.headers["authorization"] == H.encode_token(rcv.token_in)
    assert seen_body == (json.dumps(body).encode() if body is not None else b"")
    rcv.seen.clear()


def assert_refused(net: Net, answer, client: str, http_status: int, status_code: int, message: str) -> None:
    """A refusal of the Hub itself (FROM = the Hub), and nothing forwarded."""
    status, env, headers = answer
    assert (status, {k: v for k, v in env.items() if k != "timestamp"}) == \
        (http_status, {"status_code": status_code, "status_message": message})
    assert routing_of(headers) == (net[client].key, ("NL", "HUB"))
    assert all(s.functional() == [] for s in net.sinks.values())


async def hold(net: Net, sender: str, module: str, doc: dict, *, typed: bool = False) -> None:
    """What a Broadcast Push leaves at the Hub: the object under owner_id =
    the sending registration, with its owner's country_code/party_id."""
    owner = await party_named(net.hub, sender)
    key = repo.ObjectKey(module, owner.id, doc["country_code"], doc["party_id"],
                         doc["uid" if typed else "id"], doc["type"] if typed else "")
    async with net.hub.engine.begin() as conn:
        await repo.upsert(conn, key, json.dumps(doc), datetime(2026, 1, 1, tzinfo=UTC))


async def learnt_rows(net: Net) -> list[tuple]:
    async with net.hub.engine.connect() as conn:
        rows = await conn.execute(sa.select(hub_routes.c.module, hub_routes.c.ref_key, hub_routes.c.from_cc,
                                            hub_routes.c.from_pid, hub_routes.c.to_cc, hub_routes.c.to_pid)
                                  .order_by(hub_routes.c.id))
        return [tuple(r) for r in rows]


async def put_session(net: Net, sid: str = "S1", *, to=("FR", "EM2")) -> None:
    """cpo2 PUTs a Session of emsp2's token through the Hub (direct routing): the Hub learns its route."""
    doc = session(sid, "BE", "CP2", token=cdr_token("FR", "EM2"))
    answer = await open_call(net, "cpo2", "PUT", "sessions", "RECEIVER", "BE", "CP2", sid, body=doc, to=to)
    assert answer[0] == 200
    net["emsp2"].seen.clear()


# --- the rules ---------------------------------------------------------------------------------


async def test_a_get_of_a_sender_list_without_to_is_refused(net):
    answer = await open_call(net, "emsp", "GET", "locations", "SENDER", query="limit=10")
    assert_refused(net, answer, "emsp", 400, 2001,
                   "a GET of the locations Sender list is a GET All, which is no Open Routing Request: set "
                   "OCPI-to to the Hub (NL/HUB) to get the merged list, or to the party whose list you want")


async def test_a_session_put_goes_to_the_issuer_of_its_token(net):
    doc = session("S1", "BE", "CP2", token=cdr_token("FR", "EM2"))
    answer = await open_call(net, "cpo2", "PUT", "sessions", "RECEIVER", "BE", "CP2", "S1", body=doc)
    assert_routed(net, answer, "cpo2", "emsp2", "PUT", "receiver/sessions/BE/CP2/S1", doc)
    # the route is learnt: FROM = the session's CPO, TO = its eMSP
    assert await learnt_rows(net) == [("sessions", "S1", "BE", "CP2", "FR", "EM2")]


async def test_a_session_patch_without_cdr_token_follows_the_route_of_its_put(net):
    await put_session(net, "S7")
    await put_session(net, "S7")  # written once
    assert await learnt_rows(net) == [("sessions", "S7", "BE", "CP2", "FR", "EM2")]
    patch = {"kwh": 4.5, "last_updated": "2026-01-01T00:10:00Z"}
    answer = await open_call(net, "cpo2", "PATCH", "sessions", "RECEIVER", "BE", "CP2", "S7", body=patch)
    assert_routed(net, answer, "cpo2", "emsp2", "PATCH", "receiver/sessions/BE/CP2/S7", patch)


async def test_a_session_patch_without_cdr_token_or_learnt_route_is_4001(net):
    patch = {"kwh": 4.5, "last_updated": "2026-01-01T00:10:00Z"}
    answer = await open_call(net, "cpo2", "PATCH", "sessions", "RECEIVER", "BE", "CP2", "S8", body=patch)
    assert_refused(net, answer, "cpo2", 404, 4001,
                   "open routing: the PATCH of Session 'S8' has no cdr_token, and no PUT of that session from you "
                   "went through this Hub" + ADDRESS_IT)


async def test_a_cdr_post_goes_to_the_issuer_of_its_token(net):
    doc = {"country_code": "NL", "party_id": "CPO", "id": "CDR1", "cdr_token": cdr_token("DE", "EMS"),
           "total_cost": {"excl_vat": 1.5}, "last_updated": "2026-01-01T01:00:00Z"}
    answer = await open_call(net, "cpo", "POST", "cdrs", "RECEIVER", body=doc)
    assert_routed(net, answer, "cpo", "emsp", "POST", "receiver/cdrs", doc)


async def test_an_authorize_goes_to_the_issuer_of_the_token_the_hub_holds(net):
    # The same uid from two eMSPs, of two types: ?type= tells them apart.
    await hold(net, "emsp", "tokens", token("TOK9", "DE", "EMS", type="RFID"), typed=True)
    await hold(net, "emsp2", "tokens", token("TOK9", "FR", "EM2", type="APP_USER"), typed=True)
    refs = {"location_id": "LOC1"}
    answer = await open_call(net, "cpo", "POST", "tokens", "SENDER", "TOK9", "authorize", body=refs,
                             query="type=APP_USER")
    assert_routed(net, answer, "cpo", "emsp2", "POST", "sender/tokens/TOK9/authorize", refs, "type=APP_USER")
    # no type means RFID
    answer = await open_call(net, "cpo", "POST", "tokens", "SENDER", "TOK9", "authorize", body=refs)
    assert_routed(net, answer, "cpo", "emsp", "POST", "sender/tokens/TOK9/authorize", refs)


async def test_an_authorize_of_a_token_the_hub_does_not_hold_is_4001(net):
    await hold(net, "emsp", "tokens", token("TOK9", "DE", "EMS", type="RFID"), typed=True)
    answer = await open_call(net, "cpo", "POST", "tokens", "SENDER", "TOK9", "authorize", query="type=APP_USER")
    assert_refused(net, answer, "cpo", 404, 4001,
                   "open routing: the Hub holds no Token 'TOK9' of type APP_USER from a Broadcast Push, so its "
                   "issuer is unknown" + ADDRESS_IT)


@pytest.mark.parametrize("command", ["START_SESSION", "RESERVE_NOW", "UNLOCK_CONNECTOR"])
async def test_a_command_naming_a_location_goes_to_its_cpo(net, command):
    await hold(net, "cpo", "locations", location("LOC1", "NL", "CPO"))
    await hold(net, "cpo2", "locations", location("LOC2", "BE", "CP2"))
    body = {"response_url": "https://emsp.example/commands/1", "location_id": "LOC2", "evse_uid": "E1",
            "connector_id": "1", "token": token("TOK1", "DE", "EMS"), "reservation_id": "R1",
            "expiry_date": "2026-01-01T02:00:00Z"}
    answer = await open_call(net, "emsp", "POST", "commands", "RECEIVER", command, body=body)
    assert_routed(net, answer, "emsp", "cpo2", "POST", f"receiver/commands/{command}", body)


async def test_a_stop_session_goes_to_the_cpo_of_the_session(net):
    await put_session(net, "S5")
    body = {"response_url": "https://emsp.example/commands/2", "session_id": "S5"}
    answer = await open_call(net, "emsp2", "POST", "commands", "RECEIVER", "STOP_SESSION", body=body)
    assert_routed(net, answer, "emsp2", "cpo2", "POST", "receiver/commands/STOP_SESSION", body)


async def test_a_cancel_reservation_is_4001_until_its_reserve_now_went_through_the_hub(net):
    cancel = {"response_url": "https://emsp.example/commands/3", "reservation_id": "R7"}
    answer = await open_call(net, "emsp", "POST", "commands", "RECEIVER", "CANCEL_RESERVATION", body=cancel)
    assert_refused(net, answer, "emsp", 404, 4001,
                   "open routing: no RESERVE_NOW of reservation 'R7' from you went through this Hub" + ADDRESS_IT)
    await hold(net, "cpo2", "locations", location("LOC2", "BE", "CP2"))
    reserve = {"response_url": "https://emsp.example/commands/4", "location_id": "LOC2", "reservation_id": "R7",
               "token": token("TOK1", "DE", "EMS"), "expiry_date": "2026-01-01T02:00:00Z"}
    answer = await open_call(net, "emsp", "POST", "commands", "RECEIVER", "RESERVE_NOW", body=reserve)
    assert_routed(net, answer, "emsp", "cpo2", "POST", "receiver/commands/RESERVE_NOW", reserve)
    answer = await open_call(net, "emsp", "POST", "commands", "RECEIVER", "CANCEL_RESERVATION", body=cancel)
    assert_routed(net, answer, "emsp", "cpo2", "POST", "receiver/commands/CANCEL_RESERVATION", cancel)


async def test_charging_profiles_go_to_the_cpo_of_the_session_and_back_to_their_setter(net):
    await put_session(net, "S6")
    body = {"response_url": "https://emsp.example/cp/1",
            "charging_profile": {"charging_rate_unit": "W", "charging_profile_period": [
                {"start_period": 0, "limit": 11000.0}]}}
    answer = await open_call(net, "emsp2", "PUT", "chargingprofiles", "RECEIVER", "S6", body=body)
    assert_routed(net, answer, "emsp2", "cpo2", "PUT", "receiver/chargingprofiles/S6", body)
    answer = await open_call(net, "emsp2", "GET", "chargingprofiles", "RECEIVER", "S6",
                             query="duration=900&response_url=https://emsp.example/cp/2")
    assert_routed(net, answer, "emsp2", "cpo2", "GET", "receiver/chargingprofiles/S6",
                  query="duration=900&response_url=https://emsp.example/cp/2")
    answer = await open_call(net, "emsp2", "DELETE", "chargingprofiles", "RECEIVER", "S6",
                             query="response_url=https://emsp.example/cp/3")
    assert_routed(net, answer, "emsp2", "cpo2", "DELETE", "receiver/chargingprofiles/S6",
                  query="response_url=https://emsp.example/cp/3")
    # The CPO's ActiveChargingProfile goes to the party that set a profile for the session.
    active = {"start_date_time": "2026-01-01T00:00:00Z", "charging_profile": body["charging_profile"]}
    answer = await open_call(net, "cpo2", "PUT", "chargingprofiles", "SENDER", "S6", body=active)
    assert_routed(net, answer, "cpo2", "emsp2", "PUT", "sender/chargingprofiles/S6", active)


async def test_charging_preferences_go_to_the_cpo_of_the_session(net):
    await put_session(net, "S4")
    prefs = {"profile_type": "FAST", "energy_need": 20}
    answer = await open_call(net, "emsp2", "PUT", "sessions", "SENDER", "S4", "charging_preferences", body=prefs)
    assert_routed(net, answer, "emsp2", "cpo2", "PUT", "sender/sessions/S4/charging_preferences", prefs)


async def test_a_location_get_goes_to_the_cpo_that_owns_it(net):
    await hold(net, "cpo", "locations", location("LOC1", "NL", "CPO"))
    await hold(net, "cpo2", "locations", location("LOC2", "BE", "CP2"))
    answer = await open_call(net, "emsp", "GET", "locations", "SENDER", "LOC2")
    assert_routed(net, answer, "emsp", "cpo2", "GET", "sender/locations/LOC2")
    answer = await open_call(net, "emsp", "GET", "locations", "SENDER", "LOC1", "E1", "1")
    assert_routed(net, answer, "emsp", "cpo", "GET", "sender/locations/LOC1/E1/1")


@pytest.mark.parametrize(("client", "module", "doc"), [
    ("cpo", "locations", location("LOC1", "NL", "CPO")),
    ("cpo", "tariffs", {"country_code": "NL", "party_id": "CPO", "id": "T1"}),
    ("emsp", "tokens", token("TOK1", "DE", "EMS")),
])
async def test_a_push_of_broadcast_data_without_to_is_a_broadcast_push(net, client, module, doc):
    handed = []

    async def broadcast(hub, routed):  # the Hub's Broadcast Push handler (another part of hub/)
        handed.append((routed.method, routed.module.id, routed.rest, routed.to, routed.sender, routed.body))
        return Answer(200, b'{"status_code":1000,"timestamp":"2026-01-01T00:00:00Z"}',
                      [(b"content-type", b"application/json"), *hub.routing_answer(routed.sender)])

    net.hub.hub.broadcast = broadcast
    cc, pid = net[client].key
    oid = doc.get("uid", doc["id"] if "id" in doc else "")
    status, env, headers = await open_call(net, client, "PUT", module, "RECEIVER", cc, pid, oid, body=doc)
    assert (status, env) == (200, {"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"})
    assert routing_of(headers) == (net[client].key, ("NL", "HUB"))
    assert handed == [("PUT", module, f"/{cc}/{pid}/{oid}", ("NL", "HUB"), (cc, pid), json.dumps(doc).encode())]
    assert all(s.functional() == [] for s in net.sinks.values())


async def test_a_receiver_get_of_a_client_owned_object_is_4001(net):
    answer = await open_call(net, "cpo", "GET", "locations", "RECEIVER", "NL", "CPO", "LOC1")
    assert_refused(net, answer, "cpo", 404, 4001,
                   "open routing: a Receiver GET of one locations object names its owner, which is you: the Hub "
                   "cannot tell whose copy you want" + ADDRESS_IT)


async def test_content_that_does_not_tell_the_receiver_is_4001(net):
    doc = session("S1", "BE", "CP2")
    del doc["cdr_token"]
    answer = await open_call(net, "cpo2", "PUT", "sessions", "RECEIVER", "BE", "CP2", "S1", body=doc)
    assert_refused(net, answer, "cpo2", 404, 4001, "open routing: the Session has no cdr_token (country_code, "
                   "party_id of its eMSP)" + ADDRESS_IT)
    body = {"response_url": "https://emsp.example/commands/1", "location_id": "NOWHERE",
            "token": token("TOK1", "DE", "EMS")}
    answer = await open_call(net, "emsp", "POST", "commands", "RECEIVER", "START_SESSION", body=body)
    assert_refused(net, answer, "emsp", 404, 4001, "open routing: the Hub holds no Location 'NOWHERE' from a "
                   "Broadcast Push, so the CPO it belongs to is unknown" + ADDRESS_IT)
    answer = await open_call(net, "cpo", "DELETE", "tariffs", "RECEIVER", "NL", "CPO", "T1")
    assert_refused(net, answer, "cpo", 404, 4001, "open routing: the Hub has no rule that tells the receiver of a "
                   "DELETE to the tariffs receiver interface from its content" + ADDRESS_IT)
    # a token the CPO itself issued: the content names the caller
    doc = session("S2", "NL", "CPO", token=cdr_token("NL", "CPO"))
    answer = await open_call(net, "cpo", "PUT", "sessions", "RECEIVER", "NL", "CPO", "S2", body=doc)
    assert_refused(net, answer, "cpo", 404, 4001, "open routing: the content names NL/CPO, which is you" + ADDRESS_IT)


async def test_a_body_that_is_no_json_object_is_2001(net):
    sink = net["cpo"]
    status, env, headers = await call("POST", sink.hub_url("cdrs", "RECEIVER"), sink.token_hub, frm=sink.key,
                                      body=b"[1, 2")
    assert_refused(net, (status, env, headers), "cpo", 400, 2001, "the body is not a JSON object, so the Hub "
                   "cannot route it by its content; address the receiver in OCPI-to-country-code and "
                   "OCPI-to-party-id")


async def test_the_chosen_receiver_must_be_connected(net):
    emsp2 = await party_named(net.hub, "emsp2")
    async with net.hub.engine.begin() as conn:
        await party_repo.update(conn, emsp2.id, hub_status="OFFLINE")
    net.hub.hub.directory.invalidate()
    doc = session("S1", "BE", "CP2", token=cdr_token("FR", "EM2"))
    answer = await open_call(net, "cpo2", "PUT", "sessions", "RECEIVER", "BE", "CP2", "S1", body=doc)
    assert_refused(net, answer, "cpo2", 502, 4003, "receiver FR/EM2 is OFFLINE")
