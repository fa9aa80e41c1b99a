"""Tokens between an eMSP and a CPO (mod_tokens.asciidoc): the Sender list and
real-time authorize at the eMSP, the Receiver at the CPO, push and pull, and
the CPO's whitelist-driven authorization (modules/tokens/client.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp

from evroam.node import Node
from evroam.ocpi.common import DisplayText
from evroam.ocpi.headers import encode_token
from evroam.ocpi.tokens import AllowedType, AuthorizationInfo, LocationReferences, Token
from evroam.ocpi.types import format_datetime, utcnow
from evroam.modules.tokens.client import CACHE, OFFLINE_FALLBACK, REALTIME
from evroam.modules.events import Authorize, Received
from evroam.modules.tokens.sender import LocationRequired
from evroam.store import calllog, objects
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from tests.examples import load_example
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.partners import party_named

CPO = [("CPO", "NL", "CPO")]
# The spec's examples are issued by DE/TNM and NL/TNM.
EMSP = [("EMSP", "DE", "TNM"), ("EMSP", "NL", "TNM")]


def token(uid: str = "0001", type_: str = "RFID", *, valid: bool = True, whitelist: str = "ALWAYS",
          updated: str = "2026-01-01T00:00:00Z", cc: str = "DE", pid: str = "TNM") -> dict:
    return {"country_code": cc, "party_id": pid, "uid": uid, "type": type_, "contract_id": f"DE8ACC{uid}"[:36],
            "issuer": "TheNewMotion", "valid": valid, "whitelist": whitelist, "last_updated": updated}


@dataclass
class Pair:
    cpo: Node
    emsp: Node
    cpo_at_emsp: Party  # how the eMSP knows the CPO
    emsp_at_cpo: Party

    @property
    def sender(self) -> str:  # the eMSP's tokens Sender, called by the CPO
        return self.emsp_at_cpo.endpoint_url("tokens", "SENDER")

    @property
    def receiver(self) -> str:  # the CPO's tokens Receiver, called by the eMSP
        return self.cpo_at_emsp.endpoint_url("tokens", "RECEIVER")

    @property
    def cpo_token(self) -> str:
        return self.emsp_at_cpo.token_out

    @property
    def emsp_token(self) -> str:
        return self.cpo_at_emsp.token_out


async def pair(cluster, tokens: list[dict] = (), *, emsp_name: str = "emsp", emsp_roles=EMSP,
               cpo: Node | None = None) -> Pair:
    """A registered CPO/eMSP pair. `tokens` are published at the eMSP before
    registration, so nothing is pushed: the CPO knows them only by pull or ask."""
    cpo = cpo or await cluster.node("cpo", CPO)
    emsp = await cluster.node(emsp_name, emsp_roles)
    for t in tokens:
        await emsp.publish("tokens", Token.from_wire(t))
    token_a, versions_url = await cpo.handshake.invite(emsp_name)
    cpo_at_emsp = await emsp.handshake.register(versions_url, token_a)
    return Pair(cpo, emsp, cpo_at_emsp, await party_named(cpo, emsp_name))


async def cached(node: Node, owner_id: int, uid: str, type_: str = "RFID", cc: str = "DE",
                 pid: str = "TNM") -> dict | None:
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey("tokens", owner_id, cc, pid, uid, type_))
    return json.loads(s.data) if s else None


# --- Sender (eMSP): real-time authorize ------------------------------------------------------


async def test_authorize_unknown_token_is_404_2004_without_data(cluster):
    p = await pair(cluster, [token("KNOWN")])
    status, body, _ = await call("POST", f"{p.sender}/NOPE/authorize", p.cpo_token)
    assert (status, body["status_code"]) == (404, 2004)
    assert "data" not in body
    # uid + type is the identity: the RFID token is not an APP_USER token.
    status, body, _ = await call("POST", f"{p.sender}/KNOWN/authorize?type=APP_USER", p.cpo_token,
                                 {"location_id": "LOC1"})
    assert (status, body["status_code"]) == (404, 2004) and "data" not in body
    # The CPO side asks in real time and gets "unknown".
    d = await p.cpo.authorize("NOPE")
    assert (d.allowed, d.source, d.info, d.party) == (False, REALTIME, None, None)
    assert "unknown token" in d.reason
    await p.emsp.call_log.flush()
    ins = [r for r in await calllog.recent(p.emsp.engine, p.cpo_at_emsp.id, 50)
           if r["direction"] == "in" and r["method"] == "POST"]
    assert ins[0]["url"].endswith("/NOPE/authorize?type=RFID")  # the type is always sent
    assert (ins[0]["http_status"], ins[0]["ocpi_status"]) == (404, 2004)


async def test_authorize_without_hook_decides_by_validity(cluster):
    p = await pair(cluster, [token("V1"), token("B1", valid=False), token("V1", "APP_USER", valid=False)])
    status, body, headers = await call("POST", f"{p.sender}/V1/authorize", p.cpo_token)
    assert (status, body["status_code"]) == (200, 1000)
    info = body["data"]
    assert info["allowed"] == "ALLOWED"
    assert info["token"] == token("V1")  # the complete stored Token
    assert "location" not in info
    ref = info["authorization_reference"]
    assert len(ref) == 36
    AuthorizationInfo.from_wire(info)
    # A fresh reference per authorization; the uid is a CiString; no type means RFID.
    _, again, _ = await call("POST", f"{p.sender}/v1/authorize", p.cpo_token)
    assert again["data"]["allowed"] == "ALLOWED" and again["data"]["authorization_reference"] != ref
    _, typed, _ = await call("POST", f"{p.sender}/V1/authorize?type=RFID", p.cpo_token)
    assert typed["data"]["token"]["type"] == "RFID"
    # Same uid, other type: another token, here invalid → BLOCKED, still HTTP 200 + 1000.
    status, body, _ = await call("POST", f"{p.sender}/V1/authorize?type=APP_USER", p.cpo_token)
    assert (status, body["status_code"], body["data"]["allowed"]) == (200, 1000, "BLOCKED")
    assert body["data"]["token"]["type"] == "APP_USER"
    # A location is echoed only where charging is allowed.
    loc = {"location_id": "LOC1", "evse_uids": ["E1", "E2"]}
    _, body, _ = await call("POST", f"{p.sender}/V1/authorize", p.cpo_token, loc)
    assert body["data"]["location"] == loc
    status, body, _ = await call("POST", f"{p.sender}/B1/authorize", p.cpo_token, loc)
    assert (status, body["status_code"], body["data"]["allowed"]) == (200, 1000, "BLOCKED")
    assert "location" not in body["data"]
    # Trailing slash: served, no redirect; `null` body = no location.
    status, body, _ = await call("POST", f"{p.sender}/V1/authorize/", p.cpo_token, b"null")
    assert (status, body["status_code"]) == (200, 1000)
    # Routing headers come back swapped.
    async with aiohttp.ClientSession() as s, s.post(
            f"{p.sender}/V1/authorize", headers={
                "Authorization": encode_token(p.cpo_token), "OCPI-from-country-code": "NL",
                "OCPI-from-party-id": "CPO", "OCPI-to-country-code": "DE", "OCPI-to-party-id": "TNM"}) as r:
        assert r.status == 200
        assert (r.headers["OCPI-to-party-id"], r.headers["OCPI-from-party-id"]) == ("CPO", "TNM")


async def test_authorize_bad_requests(cluster):
    p = await pair(cluster, [token("V1")])
    url = f"{p.sender}/V1/authorize"
    # Enum values are case-sensitive; EMAID is 2.3.0 only.
    for bad in ("rfid", "EMAID", ""):
        status, body, _ = await call("POST", f"{url}?type={bad}", p.cpo_token)
        assert (status, body["status_code"]) == (200, 2001) and "type" in body["status_message"]
    status, body, _ = await call("POST", url, p.cpo_token, b'{"location_id": ')
    assert (status, body["status_code"]) == (400, 2000)
    status, body, _ = await call("POST", url, p.cpo_token, {"evse_uids": ["E1"]})
    assert (status, body["status_code"]) == (200, 2001) and "location_id" in body["status_message"]
    # Every tokens endpoint authenticates, with an envelope.
    for method, u in (("POST", url), ("GET", p.sender), ("GET", f"{p.receiver}/DE/TNM/V1")):
        status, body, _ = await call(method, u, None)
        assert (status, body["status_code"]) == (401, 2000)
        status, body, _ = await call(method, u, "not-a-token-we-issued")
        assert (status, body["status_code"]) == (401, 2000)
    # The Sender has no PUT/PATCH/DELETE.
    status, body, _ = await call("PUT", url, p.cpo_token, {})
    assert (status, body["status_code"]) == (405, 2000)


async def test_authorize_hook(cluster):
    p = await pair(cluster, [token(u) for u in ("NC", "EX", "NA", "PART", "BLK", "NEEDLOC", "BUG")])
    calls = []

    @p.emsp.on(Authorize.TOKEN)
    async def decide(tok: Token, loc: LocationReferences | None, party: Party):
        calls.append((tok.uid, loc, party.name))
        if tok.uid == "NEEDLOC" and loc is None:
            raise LocationRequired()
        if tok.uid == "PART":
            return AuthorizationInfo(allowed=AllowedType.ALLOWED, token=tok, authorization_reference="REF-1",
                                     location=LocationReferences(location_id=loc.location_id,
                                                                 evse_uids=loc.evse_uids[:1]),
                                     info=DisplayText(language="en", text="Only the left one"))
        if tok.uid == "BLK":
            return AuthorizationInfo(allowed=AllowedType.BLOCKED, token=tok, location=loc)
        if tok.uid == "BUG":
            return "yes"
        return {"NC": AllowedType.NO_CREDIT, "EX": AllowedType.EXPIRED, "NA": AllowedType.NOT_ALLOWED,
                "NEEDLOC": AllowedType.ALLOWED}[tok.uid]

    loc = {"location_id": "LOC1", "evse_uids": ["E1", "E2"]}
    for uid, allowed in (("NC", "NO_CREDIT"), ("EX", "EXPIRED"), ("NA", "NOT_ALLOWED"), ("BLK", "BLOCKED")):
        status, body, _ = await call("POST", f"{p.sender}/{uid}/authorize", p.cpo_token, loc)
        assert (status, body["status_code"], body["data"]["allowed"]) == (200, 1000, allowed)
        assert "location" not in body["data"] and body["data"]["token"]["uid"] == uid
    # The hook gets the token, the LocationReferences and the calling party.
    assert calls[0] == ("NC", LocationReferences.from_wire(loc), p.cpo_at_emsp.name)
    _, body, _ = await call("POST", f"{p.sender}/PART/authorize", p.cpo_token, loc)
    assert body["data"]["location"] == {"location_id": "LOC1", "evse_uids": ["E1"]}
    assert body["data"]["authorization_reference"] == "REF-1"
    assert body["data"]["info"] == {"language": "en", "text": "Only the left one"}
    # The eMSP needs a location: 2002 without data; with one, allowed.
    status, body, _ = await call("POST", f"{p.sender}/NEEDLOC/authorize", p.cpo_token)
    assert (status, body["status_code"]) == (200, 2002) and "data" not in body
    _, body, _ = await call("POST", f"{p.sender}/NEEDLOC/authorize", p.cpo_token, {"location_id": "LOC1"})
    assert body["data"]["allowed"] == "ALLOWED" and body["data"]["location"] == {"location_id": "LOC1"}
    # The CPO side reads 2002 as "not allowed, give a location".
    d = await p.cpo.authorize("NEEDLOC")
    assert (d.allowed, d.source) == (False, REALTIME) and "2002" in d.reason
    # A broken hook is our server error, not the client's.
    status, body, _ = await call("POST", f"{p.sender}/BUG/authorize", p.cpo_token)
    assert (status, body["status_code"]) == (500, 3000)


# --- Receiver (CPO) ---------------------------------------------------------------------------


async def test_receiver_spec_examples_and_identity(cluster):
    p = await pair(cluster)
    received = []

    @p.cpo.on(Received.TOKEN)
    async def got(tok: Token, party: Party) -> None:
        received.append((tok.uid, tok.type.value, tok.valid, party.name))

    put_example = load_example("token_put_example.json")
    url = f"{p.receiver}/NL/TNM/012345678"
    status, body, _ = await call("PUT", url, p.emsp_token, put_example)
    assert (status, body["status_code"]) == (201, 1000)  # no ?type= means RFID
    status, body, _ = await call("GET", url, p.emsp_token)
    assert (status, body["status_code"], body["data"]) == (200, 1000, put_example)
    status, body, _ = await call("GET", url + "?type=RFID", p.emsp_token)
    assert body["data"] == put_example
    status, body, _ = await call("GET", url + "?type=APP_USER", p.emsp_token)
    assert (status, body["status_code"]) == (404, 2000)
    # The spec's PATCH example invalidates the token; other fields stay.
    patch = load_example("token_patch_example.json")
    status, body, _ = await call("PATCH", url, p.emsp_token, patch)
    assert (status, body["status_code"]) == (200, 1000)
    _, body, _ = await call("GET", url, p.emsp_token)
    assert body["data"] == {**put_example, **patch}
    assert received == [("012345678", "RFID", True, "emsp"), ("012345678", "RFID", False, "emsp")]

    # A GET of one token answers one object, shaped like the spec's envelope example.
    envelope = load_example("transport_and_format_get_token_example.json")
    status, _, _ = await call("PUT", f"{p.receiver}/DE/TNM/012345678", p.emsp_token, envelope["data"])
    assert status == 201
    _, body, _ = await call("GET", f"{p.receiver}/DE/TNM/012345678", p.emsp_token)
    assert body["data"] == envelope["data"] and isinstance(body["data"], dict)
    # Same uid, another type: a second token (201), each readable by its type.
    app_user = {**envelope["data"], "type": "APP_USER", "whitelist": "NEVER"}
    status, body, _ = await call("PUT", f"{p.receiver}/DE/TNM/012345678?type=APP_USER", p.emsp_token, app_user)
    assert (status, body["status_code"]) == (201, 1000)
    _, body, _ = await call("GET", f"{p.receiver}/DE/TNM/012345678?type=APP_USER", p.emsp_token)
    assert body["data"]["whitelist"] == "NEVER"
    _, body, _ = await call("GET", f"{p.receiver}/DE/TNM/012345678", p.emsp_token)
    assert body["data"]["whitelist"] == "ALLOWED"
    for name, type_ in (("token_example_1_app_user.json", "APP_USER"), ("token_example_2_full_rfid.json", "RFID")):
        ex = load_example(name)
        status, body, _ = await call("PUT", f"{p.receiver}/DE/TNM/{ex['uid']}?type={type_}", p.emsp_token, ex)
        assert (status, body["status_code"]) == (201, 1000)
        _, body, _ = await call("GET", f"{p.receiver}/DE/TNM/{ex['uid']}?type={type_}", p.emsp_token)
        assert body["data"] == ex
    # The body's type must be the URL's (absent = RFID): 2001, nothing written.
    ex = load_example("token_example_1_app_user.json")
    new_uid = {**ex, "uid": "APP-2"}
    status, body, _ = await call("PUT", f"{p.receiver}/DE/TNM/APP-2", p.emsp_token, new_uid)
    assert (status, body["status_code"]) == (200, 2001) and "type" in body["status_message"]
    for t in ("RFID", "APP_USER"):
        status, _, _ = await call("GET", f"{p.receiver}/DE/TNM/APP-2?type={t}", p.emsp_token)
        assert status == 404
    # CiString keys: a lower-cased URL addresses the same token (200, replaced).
    status, body, _ = await call("PUT", f"{p.receiver}/nl/tnm/012345678", p.emsp_token,
                                 {**put_example, "valid": True, "last_updated": "2020-01-01T00:00:00Z"})
    assert (status, body["status_code"]) == (200, 1000)
    assert (await cached(p.cpo, p.emsp_at_cpo.id, "012345678", cc="NL"))["valid"] is True


async def test_receiver_rules(cluster):
    p = await pair(cluster)
    url = f"{p.receiver}/DE/TNM/T1"
    tok = p.emsp_token
    status, _, _ = await call("PUT", url, tok, token("T1"))
    assert status == 201
    status, body, _ = await call("PUT", url, tok, token("T1", updated="2026-01-02T00:00:00Z"))
    assert (status, body["status_code"]) == (200, 1000)
    # A replayed older version never overwrites a newer one.
    status, body, _ = await call("PUT", url, tok, token("T1", valid=False, updated="2025-01-01T00:00:00Z"))
    assert body["status_code"] == 1000
    assert (await cached(p.cpo, p.emsp_at_cpo.id, "T1"))["valid"] is True
    # DateTime: no Z and milliseconds accepted, emitted canonically; offsets refused.
    status, body, _ = await call("PUT", url, tok, token("T1", updated="2026-01-03T00:00:00.120"))
    assert (status, body["status_code"]) == (200, 1000)
    _, body, _ = await call("GET", url, tok)
    assert body["data"]["last_updated"] == "2026-01-03T00:00:00.12Z"
    status, body, _ = await call("PUT", url, tok, token("T1", updated="2026-01-04T00:00:00+01:00"))
    assert (status, body["status_code"]) == (200, 2001) and "last_updated" in body["status_message"]
    # URL and body disagree; another party's cc/pid; invalid object; broken JSON.
    status, body, _ = await call("PUT", f"{p.receiver}/DE/TNM/T2", tok, token("T1"))
    assert (status, body["status_code"]) == (200, 2001) and "uid" in body["status_message"]
    status, body, _ = await call("PUT", f"{p.receiver}/FR/XXX/T1", tok, token("T1", cc="FR", pid="XXX"))
    assert (status, body["status_code"]) == (404, 2000)
    status, body, _ = await call("PUT", url, tok, {**token("T1"), "whitelist": "always"})
    assert (status, body["status_code"]) == (200, 2001) and "whitelist" in body["status_message"]
    status, body, _ = await call("PUT", url, tok, b'{"uid": "T1"')
    assert (status, body["status_code"]) == (400, 2000)
    # PATCH: needs last_updated; cannot move uid or type; cannot make the token invalid.
    for bad, field in (({"valid": False}, "last_updated"),
                       ({"type": "APP_USER", "last_updated": "2026-02-01T00:00:00Z"}, "type"),
                       ({"uid": "T9", "last_updated": "2026-02-01T00:00:00Z"}, "uid"),
                       ({"whitelist": "SOMETIMES", "last_updated": "2026-02-01T00:00:00Z"}, "whitelist")):
        status, body, _ = await call("PATCH", url, tok, bad)
        assert (status, body["status_code"]) == (200, 2001) and field in body["status_message"], bad
    assert (await cached(p.cpo, p.emsp_at_cpo.id, "T1"))["last_updated"] == "2026-01-03T00:00:00.12Z"
    # PATCH of an unknown token (or unknown type of a known uid): 404, nothing created.
    for u in (f"{p.receiver}/DE/TNM/GHOST", f"{url}?type=OTHER"):
        status, body, _ = await call("PATCH", u, tok, {"valid": False, "last_updated": "2026-02-01T00:00:00Z"})
        assert (status, body["status_code"]) == (404, 2000)
    assert await cached(p.cpo, p.emsp_at_cpo.id, "GHOST") is None
    assert await cached(p.cpo, p.emsp_at_cpo.id, "T1", "OTHER") is None
    status, body, _ = await call("GET", f"{url}?type=BADGE", tok)
    assert (status, body["status_code"]) == (200, 2001)
    # POST and DELETE do not exist on the Receiver: tokens are invalidated with valid=false.
    for method in ("POST", "DELETE"):
        status, body, _ = await call(method, url, tok, token("T1") if method == "POST" else None)
        assert (status, body["status_code"]) == (405, 2000)
    assert (await cached(p.cpo, p.emsp_at_cpo.id, "T1")) is not None


# --- push and pull -------------------------------------------------------------------------------


async def test_emsp_push_reaches_cpo(cluster):
    p = await pair(cluster)
    seen = []

    @p.cpo.on(Received.TOKEN)
    async def got(tok: Token, party: Party) -> None:
        seen.append((tok.uid, tok.type.value, tok.valid))

    p.emsp.start_workers()
    await p.emsp.publish("tokens", Token.from_wire(token("P1", whitelist="ALWAYS")))
    await p.emsp.publish("tokens", Token.from_wire(token("P1", "APP_USER", whitelist="NEVER")))
    owner = p.emsp_at_cpo.id
    await wait_for(lambda: _both_types(p.cpo, owner), what="both P1 tokens at the CPO")
    assert (await cached(p.cpo, owner, "P1", "APP_USER"))["whitelist"] == "NEVER"
    # Invalidation as a PATCH (the delivery worker adds ?type=).
    later = "2026-03-01T00:00:00Z"
    await p.emsp.publish("tokens", Token.from_wire(token("P1", "APP_USER", valid=False, whitelist="NEVER",
                                                         updated=later)),
                         patch={"valid": False, "last_updated": later})
    await wait_for(lambda: _valid_is(p.cpo, owner, "P1", "APP_USER", False), what="the PATCH at the CPO")
    assert (await cached(p.cpo, owner, "P1"))["valid"] is True  # the RFID token is untouched
    await p.cpo.call_log.flush()
    patches = [r for r in await calllog.recent(p.cpo.engine, p.emsp_at_cpo.id, 50)
               if r["direction"] == "in" and r["method"] == "PATCH"]
    assert patches and patches[0]["url"].endswith("/DE/TNM/P1?type=APP_USER")
    assert ("P1", "APP_USER", False) in seen
    # The CPO now decides from its cache.
    d = await p.cpo.authorize("P1")
    assert (d.allowed, d.source, d.party) == (True, CACHE, "emsp")


async def _both_types(node: Node, owner: int) -> bool:
    return (await cached(node, owner, "P1") is not None) and (await cached(node, owner, "P1", "APP_USER") is not None)


async def _valid_is(node: Node, owner: int, uid: str, type_: str, valid: bool) -> bool:
    doc = await cached(node, owner, uid, type_)
    return doc is not None and doc["valid"] is valid


async def test_cpo_pulls_tokens_full_and_delta(cluster):
    spec = load_example("transport_and_format_get_token_list_example.json")["data"]
    p = await pair(cluster, spec + [token("OWN1")])
    owner = p.emsp_at_cpo.id
    # The Sender list: paginated, Link repeats filters, absent on the last page.
    status, body, headers = await call("GET", f"{p.sender}?limit=2&date_from=2015-01-01T00:00:00Z", p.cpo_token)
    assert (status, body["status_code"], headers["X-Total-Count"]) == (200, 1000, "4")
    assert [t["uid"] for t in body["data"]] == ["100012", "100013"]
    nxt = urlsplit(headers["Link"].split(">")[0].lstrip("<"))
    assert parse_qs(nxt.query) == {"date_from": ["2015-01-01T00:00:00Z"], "offset": ["2"], "limit": ["2"]}
    status, body, headers = await call("GET", headers["Link"].split(">")[0].lstrip("<"), p.cpo_token)
    assert [t["uid"] for t in body["data"]] == ["100014", "OWN1"] and "Link" not in headers
    # date_from inclusive, date_to exclusive.
    _, body, headers = await call("GET", f"{p.sender}?date_from=2015-06-21T22:39:05Z&date_to=2015-06-29T22:39:09Z",
                                  p.cpo_token)
    assert [t["uid"] for t in body["data"]] == ["100012", "100013"]
    assert body["data"][0] == spec[0]

    result = await p.cpo.pull(p.emsp_at_cpo.name, "tokens", full=True)
    assert (result.stored, result.error, result.invalid, result.foreign) == (4, None, [], 0)
    assert await cached(p.cpo, owner, "100014", cc="NL") == spec[2]
    # Delta: only what changed since the last pull started.
    await p.emsp.publish("tokens", Token.from_wire(token("OWN1", valid=False, updated=format_datetime(utcnow()))))
    delta = await p.cpo.pull(p.emsp_at_cpo.name, "tokens")
    assert (delta.stored, delta.error) == (1, None)
    assert (await cached(p.cpo, owner, "OWN1"))["valid"] is False
    # A full pull that no longer lists a token marks it stale: the cache no
    # longer vouches for it, so the CPO asks in real time, and the eMSP says unknown.
    async with p.emsp.engine.begin() as conn:
        s = await objects.get(conn, ObjectKey("tokens", 0, "NL", "TNM", "100012", "RFID"))
        await objects.delete(conn, s.pk)
    full = await p.cpo.pull(p.emsp_at_cpo.name, "tokens", full=True)
    assert (full.stored, full.marked_stale) == (3, 1)
    d = await p.cpo.authorize("100012")  # whitelist ALWAYS while it was cached
    assert (d.allowed, d.source) == (False, REALTIME) and "unknown token" in d.reason


# --- CPO-side authorization by whitelist ----------------------------------------------------------


async def test_whitelist_types_and_offline_fallback(cluster):
    p = await pair(cluster, [
        token("ALW"), token("ALW-BAD", valid=False), token("ALD", whitelist="ALLOWED"),
        token("OFF", whitelist="ALLOWED_OFFLINE"), token("OFF-BAD", valid=False, whitelist="ALLOWED_OFFLINE"),
        token("NEV", valid=False, whitelist="NEVER"),
    ])
    asked = []
    verdicts = {"ALW": AllowedType.BLOCKED, "ALD": AllowedType.BLOCKED, "OFF": AllowedType.NO_CREDIT,
                "NEV": AllowedType.ALLOWED}

    @p.emsp.on(Authorize.TOKEN)
    async def decide(tok: Token, loc: LocationReferences | None, party: Party) -> AllowedType:
        asked.append(tok.uid)
        return verdicts.get(tok.uid, AllowedType.ALLOWED if tok.valid else AllowedType.BLOCKED)

    assert (await p.cpo.pull(p.emsp_at_cpo.name, "tokens", full=True)).stored == 6
    # ALWAYS and ALLOWED: the cache decides, the eMSP is never asked.
    d = await p.cpo.authorize("ALW")
    assert (d.allowed, d.source, d.info, d.token.uid) == (True, CACHE, None, "ALW")
    d = await p.cpo.authorize("alw-bad")
    assert (d.allowed, d.source) == (False, CACHE) and "not valid" in d.reason
    d = await p.cpo.authorize("ALD", location_id="LOC1")
    assert (d.allowed, d.source) == (True, CACHE)
    assert asked == []
    # ALLOWED_OFFLINE with the eMSP up: its answer wins over the valid cached token.
    d = await p.cpo.authorize("OFF", location_id="LOC1", evse_uids=["E1"])
    assert (d.allowed, d.source, d.allowed_type) == (False, REALTIME, AllowedType.NO_CREDIT)
    assert d.location is None
    # NEVER: asked even though the cached copy says valid=false; the answer carries the location.
    d = await p.cpo.authorize("NEV", "RFID", "LOC1", ["E1", "E2"])
    assert (d.allowed, d.source, d.allowed_type, d.party) == (True, REALTIME, AllowedType.ALLOWED, "emsp")
    assert d.location == LocationReferences(location_id="LOC1", evse_uids=["E1", "E2"])
    assert d.authorization_reference and len(d.authorization_reference) == 36
    assert asked == ["OFF", "NEV"]

    await p.emsp.stop()
    d = await p.cpo.authorize("OFF")
    assert (d.allowed, d.source, d.info) == (True, OFFLINE_FALLBACK, None)
    d = await p.cpo.authorize("OFF-BAD")
    assert (d.allowed, d.source) == (False, OFFLINE_FALLBACK)
    d = await p.cpo.authorize("NEV")
    assert (d.allowed, d.source) == (False, REALTIME) and "no answer" in d.reason
    d = await p.cpo.authorize("ALW")
    assert (d.allowed, d.source) == (True, CACHE)
    d = await p.cpo.authorize("NEVER-SEEN")
    assert (d.allowed, d.source) == (False, REALTIME) and "no usable answer" in d.reason


async def test_unknown_token_asks_each_emsp_and_caches_the_answer(cluster):
    first = await pair(cluster)
    second = await pair(cluster, [token("ROAM", cc="FR", pid="EM2", whitelist="ALWAYS")], emsp_name="emsp2",
                        emsp_roles=[("EMSP", "FR", "EM2")], cpo=first.cpo)
    cpo = first.cpo
    d = await cpo.authorize("ROAM", location_id="LOC9")
    assert (d.allowed, d.source, d.party) == (True, REALTIME, "emsp2")
    assert d.location == LocationReferences(location_id="LOC9")
    # The first eMSP (registered first) was asked before and said 404/2004.
    await cpo.call_log.flush()
    posts = [r for r in await calllog.recent(cpo.engine, first.emsp_at_cpo.id, 50)
             if r["direction"] == "out" and r["method"] == "POST"]
    assert [(r["http_status"], r["ocpi_status"]) for r in posts] == [(404, 2004)]
    # The answer's token is cached under its eMSP: next time, whitelist ALWAYS → the cache.
    assert (await cached(cpo, second.emsp_at_cpo.id, "ROAM", cc="FR", pid="EM2"))["whitelist"] == "ALWAYS"
    d = await cpo.authorize("ROAM")
    assert (d.allowed, d.source, d.party) == (True, CACHE, "emsp2")
    # A token nobody knows: every eMSP asked, not allowed.
    d = await cpo.authorize("GHOST", "APP_USER")
    assert (d.allowed, d.source) == (False, REALTIME) and "asked 2 partner(s)" in d.reason
