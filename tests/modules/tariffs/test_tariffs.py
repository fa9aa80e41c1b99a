"""Tariffs between a CPO and an eMSP: push through the outbox, pull, and the
Receiver rules (mod_tariffs.asciidoc)."""

from __future__ import annotations

import json

from evroam.ocpi.tariffs import Tariff
from evroam.store import objects
from evroam.store.objects import ObjectKey
from tests.builders import tariff
from tests.nodes import wait_for
from tests.ocpi_calls import call
from tests.pair import registered_pair


async def stored(node, party_id: int, tid: str, module: str = "tariffs"):
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, party_id, "NL", "CPO", tid))
    return json.loads(s.data) if s else None


async def test_push_reaches_emsp_and_coalesces(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    cpo_party_at_emsp = party.id
    cpo.start_workers()
    for i in range(5):
        await cpo.publish("tariffs", Tariff.from_wire(tariff(price=round(0.20 + i / 100, 2), updated=f"2026-01-01T00:00:0{i}Z")))
    await wait_for(lambda: _price_is(emsp, cpo_party_at_emsp, 0.24), what="latest tariff at the eMSP")
    await cpo.call_log.flush()
    from evroam.store import calllog

    rows = await calllog.recent(cpo.engine, limit=100)
    puts = [r for r in rows if r["direction"] == "out" and r["method"] == "PUT"]
    assert 1 <= len(puts) <= 5


async def _price_is(node, party_id, price):
    doc = await stored(node, party_id, "T1")
    return doc is not None and doc["elements"][0]["price_components"][0]["price"] == price


async def test_pull_full_and_delta_and_stale(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    for tid in ("T1", "T2", "T3"):
        await cpo.publish("tariffs", Tariff.from_wire(tariff(tid)))
    result = await emsp.pull(party.name, "tariffs", full=True)
    assert (result.stored, result.error, result.invalid) == (3, None, [])
    assert (await stored(emsp, party.id, "T2"))["id"] == "T2"
    # Delta: only what changed since the last successful pull started.
    await cpo.publish("tariffs", Tariff.from_wire(tariff("T2", price=0.5, updated="2099-01-01T00:00:00Z")))
    delta = await emsp.pull(party.name, "tariffs")
    assert delta.stored == 1
    # The call log keeps the query a pull sent (its date filter).
    from evroam.store import calllog

    await emsp.call_log.flush()
    gets = [r["url"] for r in await calllog.recent(emsp.engine, limit=50)
            if r["direction"] == "out" and r["url"].startswith(party.endpoint_url("tariffs", "SENDER"))]
    assert any("?date_from=" in u for u in gets), gets
    # A full pull that no longer returns an object marks it stale.
    async with cpo.engine.begin() as conn:
        s = await objects.get(conn, ObjectKey("tariffs", 0, "NL", "CPO", "T3"))
        await objects.delete(conn, s.pk)
    full = await emsp.pull(party.name, "tariffs", full=True)
    assert (full.stored, full.marked_stale) == (2, 1)


async def test_receiver_put_get_delete_and_rules(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    # The CPO pushes to the eMSP's Receiver with the token the eMSP gave it (B).
    async with cpo.engine.connect() as conn:
        from evroam.store import parties as repo
        emsp_at_cpo = await repo.by_name(conn, "emsp")
    base = emsp_at_cpo.endpoint_url("tariffs", "RECEIVER")
    tok = emsp_at_cpo.token_out
    status, body, _ = await call("PUT", f"{base}/NL/CPO/T1", tok, tariff())
    assert (status, body["status_code"]) == (201, 1000)
    status, body, _ = await call("PUT", f"{base}/nl/cpo/T1", tok, tariff(price=0.3))
    assert (status, body["status_code"]) == (200, 1000)  # CiString: same object
    status, body, _ = await call("GET", f"{base}/NL/CPO/T1", tok)
    assert (status, body["status_code"]) == (200, 1000)
    assert body["data"]["elements"][0]["price_components"][0]["price"] == 0.3
    # Not the caller's own cc/pid: 404, nothing written.
    status, body, _ = await call("PUT", f"{base}/DE/EMS/T9", tok, tariff("T9", cc="DE", pid="EMS"))
    assert (status, body["status_code"]) == (404, 2000)
    # URL and body disagree: 2001, nothing written.
    status, body, _ = await call("PUT", f"{base}/NL/CPO/T2", tok, tariff("T1"))
    assert (status, body["status_code"]) == (200, 2001)
    assert "id" in body["status_message"]
    status, body, _ = await call("GET", f"{base}/NL/CPO/T2", tok)
    assert (status, body["status_code"]) == (404, 2000)
    # Invalid object: 2001 naming the field; broken JSON: 400.
    bad = tariff("T3")
    bad["elements"][0]["price_components"][0]["type"] = "energy"
    status, body, _ = await call("PUT", f"{base}/NL/CPO/T3", tok, bad)
    assert (status, body["status_code"]) == (200, 2001) and "type" in body["status_message"]
    status, body, _ = await call("PUT", f"{base}/NL/CPO/T3", tok, b"{")
    assert (status, body["status_code"]) == (400, 2000)
    # PATCH does not exist for Tariffs.
    status, body, _ = await call("PATCH", f"{base}/NL/CPO/T1", tok, {"last_updated": "2026-01-01T00:00:00Z"})
    assert status == 405
    status, body, _ = await call("DELETE", f"{base}/NL/CPO/T1", tok)
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("GET", f"{base}/NL/CPO/T1", tok)
    assert status == 404


async def test_version_details_list_module_endpoints(cluster):
    cpo, emsp, _, party = await registered_pair(cluster)
    eps = {(e["identifier"], e["role"]) for e in party.endpoints}
    assert ("tariffs", "SENDER") in eps
    assert ("tariffs", "RECEIVER") not in eps
