"""/admin/openapi.json describes what the admin API really answers (issue 8,
4.8): every route is called, without a token, with broken and with empty
bodies and unknown ids, plus cases that reach success and conflicts; each
status seen must be one the route declares, the client errors it declares
(400, 401, 404) must all be seen, and 422 (never answered) is listed nowhere."""

from __future__ import annotations

import json
import re

import aiohttp

from tests.builders import location

TOKEN = "admin-" + "o" * 26
TARIFF = {"country_code": "NL", "party_id": "CPO", "id": "T1", "currency": "EUR",
          "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]}],
          "last_updated": "2026-01-01T00:00:00Z"}
CDR_TOKEN = {"country_code": "DE", "party_id": "EMS", "uid": "TOK1", "type": "RFID", "contract_id": "DE-EMS-C1"}


async def admin(node, method: str, path: str, body: object = None, token: str | None = TOKEN) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kw: dict = {}
    if isinstance(body, bytes):
        kw["data"], headers["Content-Type"] = body, "application/json"
    elif body is not None:
        kw["json"] = body
    async with aiohttp.ClientSession() as s, s.request(
            method.upper(), f"{node.config.public_url}/admin{path}", headers=headers, **kw) as r:
        envelope = json.loads(await r.text())
        assert set(envelope) >= {"status_code", "timestamp"}, envelope  # always the documented Envelope
        return r.status


def template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


async def test_openapi_lists_exactly_what_the_admin_api_answers(cluster):
    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO")], admin_token=TOKEN)
    emsp = await cluster.node("emsp", [("EMSP", "DE", "EMS")], admin_token=TOKEN)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    await emsp.handshake.register(versions_url, token_a)
    async with aiohttp.ClientSession() as s, s.get(f"{cpo.config.public_url}/admin/openapi.json") as r:
        schema = await r.json()
    declared = {(method, path): {int(c) for c in op["responses"]}
                for path, ops in schema["paths"].items() for method, op in ops.items()}
    assert not any("422" in op["responses"] for ops in schema["paths"].values() for op in ops.values())
    assert "HTTPValidationError" not in schema["components"]["schemas"]

    seen: dict[tuple[str, str], set[int]] = {k: set() for k in declared}

    def op_of(method: str, url: str) -> tuple[str, str]:
        bare = url.split("?")[0]
        matches = [k for k in declared if k[0] == method and template(k[1]).match(bare)]
        # A literal path beats a template one (/sessions/{id}/stop vs …).
        return min(matches, key=lambda k: k[1].count("{"))

    async def probe(node, method: str, url: str, body: object = None, token: str | None = TOKEN) -> int:
        status = await admin(node, method, url, body, token)
        seen[op_of(method, url)].add(status)
        return status

    for method, path in declared:
        url = re.sub(r"\{[^}]+\}", "NOPE", path)
        node = emsp if "commands" in path or "chargingprofiles" in path else cpo
        await probe(node, method, url, token=None)
        await probe(node, method, url, b"{broken" if method != "get" else None)
        await probe(node, method, url, {} if method != "get" else None)
    # Cases that reach what the empty probes cannot.
    assert await probe(cpo, "put", "/tariffs/T1", TARIFF) == 201
    assert await probe(cpo, "put", "/tariffs/T1", TARIFF) == 200
    assert await probe(cpo, "put", "/tariffs/T1", {**TARIFF, "last_updated": "2025-01-01T00:00:00Z"}) == 409
    assert await probe(cpo, "put", "/locations/L1", location("L1")) == 201
    assert await probe(cpo, "put", "/locations/L1/evses/E9/status", {"status": "CHARGING"}) == 404
    assert await probe(cpo, "put", "/locations/L1/evses/E1/status", {"status": "CHARGING"}) == 200
    assert await probe(cpo, "get", "/partners/emsp/locations?offset=-1") == 400
    assert await probe(cpo, "get", "/partners/emsp") == 200
    start = {"id": "S1", "location_id": "L1", "evse_uid": "E1", "connector_id": "1", "cdr_token": CDR_TOKEN,
             "currency": "EUR"}
    assert await probe(cpo, "post", "/sessions", start) == 201
    assert await probe(cpo, "post", "/sessions/S1/stop", {}) == 200
    assert await probe(cpo, "post", "/sessions/S1/stop", {}) == 409
    assert await probe(emsp, "post", "/commands/NOPE/STOP_SESSION", {"session_id": "S1"}) == 404
    assert await probe(emsp, "post", "/commands/nl-cpo/STOP_SESSION", {"session_id": "S1"}) == 201
    assert await probe(emsp, "post", "/chargingprofiles/nl-cpo/CLEAR", {"session_id": "S1"}) == 201
    assert await probe(emsp, "post", "/chargingprofiles/NOPE/CLEAR", {"session_id": "S1"}) == 404
    assert await probe(cpo, "post", "/sessions", start) == 409  # the same id again
    # Reading one of ours back: half a role (country_code without party_id) is a bad request.
    for path in ("/locations/L1", "/locations/L1/evses/E1", "/locations/L1/evses/E1/status", "/tariffs/T1",
                 "/tokens/T1", "/sessions/S1", "/cdrs/C1"):
        assert await probe(cpo, "get", path + "?country_code=NL") == 400
    assert await probe(cpo, "delete", "/tariffs/T1?country_code=NL") == 400
    for op, statuses in seen.items():
        assert statuses <= declared[op], (op, statuses, declared[op])
        assert declared[op] & {400, 401, 404} <= statuses, (op, statuses, declared[op])
    assert {409} <= set().union(*seen.values())
