"""The Sender's fast GET one (server/fastpath.py, issue 9 B): the same
answer and call log row as the ordinary route, a token check against the
database on every request (a token rotated or removed through another
process is refused at once), and index lookups on both backends."""

from __future__ import annotations

import dataclasses

import aiohttp
import sqlalchemy as sa

from evroam.node import Node
from evroam.ocpi.headers import encode_token
from evroam.ocpi.locations import Location
from evroam.server import fastpath
from evroam.store import calllog
from evroam.store import parties as repo
from evroam.store.reader import PG_SQL, SQLITE_SQL
from tests.builders import location
from tests.nodes import bind_loopback
from tests.pair import party_named, registered_pair

# Content-Length follows the envelope's timestamp, whose shortest-fraction
# form (format_datetime) varies in length: each answer's is checked against
# its own body instead.
VOLATILE = {"date", "x-request-id", "x-correlation-id", "content-length"}


async def get(url: str, token: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Authorization": encode_token(token), **(headers or {})}) as r:
            return r.status, await r.read(), {k.lower(): v for k, v in r.headers.items()}


def without_timestamp(body: bytes) -> bytes:
    return body[:body.rindex(b'"timestamp":')]


class Counting:
    """Counts the fast path's answers; `off` sends every request to the route."""

    def __init__(self, monkeypatch) -> None:
        self.answered = 0
        self.off = False
        answer = fastpath.FastSender._answer

        async def counted(sender, *args):
            if self.off:
                return False
            done = await answer(sender, *args)
            self.answered += done
            return done

        monkeypatch.setattr(fastpath.FastSender, "_answer", counted)


async def test_fast_answer_is_the_routes_answer(cluster, monkeypatch):
    fast = Counting(monkeypatch)
    cpo, emsp, _, party = await registered_pair(cluster)
    await cpo.publish("locations", Location.from_wire(location()))
    url = party.endpoint_url("locations", "SENDER") + "/loc1"
    claims = {"OCPI-from-country-code": "DE", "OCPI-from-party-id": "EMS", "X-Request-ID": "r-1"}
    answers = []
    for off in (False, True):
        fast.off = off
        answers.append(await get(url, party.token_out, claims))
    assert fast.answered == 1
    (status, body, headers), (status2, body2, headers2) = answers
    assert status == status2 == 200
    assert without_timestamp(body) == without_timestamp(body2)
    assert int(headers["content-length"]) == len(body) and int(headers2["content-length"]) == len(body2)
    assert {k: v for k, v in headers.items() if k not in VOLATILE} == \
        {k: v for k, v in headers2.items() if k not in VOLATILE}
    assert headers["x-request-id"] == "r-1" and headers["ocpi-to-party-id"] == "EMS"
    await cpo.call_log.flush()
    rows = [r for r in await calllog.recent(cpo.engine, limit=50) if r["url"].endswith("/loc1")]
    assert len(rows) == 2
    same = {"direction", "method", "url", "http_status", "ocpi_status", "party_id", "request_id", "request_body"}
    assert [{k: r[k] for k in same} for r in rows][0] == [{k: r[k] for k in same} for r in rows][1]
    assert [without_timestamp(r["response_body"].encode()) for r in rows] == [without_timestamp(body)] * 2


async def test_what_the_fast_path_leaves_to_the_route(cluster, monkeypatch):
    fast = Counting(monkeypatch)
    cpo, emsp, token_a, party = await registered_pair(cluster)
    url = party.endpoint_url("locations", "SENDER")
    status, body, _ = await get(url + "/NOPE", party.token_out)
    assert (status, body.count(b'"status_code":2000')) == (404, 1)
    status, body, headers = await get(url + "/NOPE", party.token_out, {"OCPI-from-party-id": "TOOLONG"})
    assert status == 200 and b'"status_code":2001' in body and headers["ocpi-to-party-id"] == "EMS"
    status, _, _ = await get(url + "/NOPE", token_a)
    assert status == 401
    assert fast.answered == 0


async def test_a_token_changed_by_another_process_is_refused_at_once(cluster, monkeypatch, tmp_path):
    fast = Counting(monkeypatch)
    cpo, emsp, _, party = await registered_pair(cluster)
    await cpo.publish("locations", Location.from_wire(location()))
    # A second CPO process on the same database, with its own engine and fast path.
    sock = bind_loopback()
    port = sock.getsockname()[1]
    other = Node(dataclasses.replace(cpo.config, home=tmp_path / "cpo-b", port=port,
                                     public_url=f"http://127.0.0.1:{port}"))
    (tmp_path / "cpo-b").mkdir()
    cluster.nodes.append(other)
    await other.serve_in_background(sock)
    url = f"{other.config.public_url}/ocpi/2.2.1/sender/locations/LOC1"
    old = party.token_out
    assert (await get(url, old))[0] == 200
    new = (await emsp.handshake.rotate("nl-cpo")).token_out  # through the first CPO process
    assert (await get(url, old))[0] == 401
    assert (await get(url, new))[0] == 200
    async with cpo.engine.begin() as conn:
        await repo.drop_tokens(conn, (await party_named(cpo, "emsp")).id)
    assert (await get(url, new))[0] == 401
    assert fast.answered == 2


async def test_lookups_by_id_use_the_index(cluster):
    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO")], serve=False)
    find_any_owner = ("SELECT id FROM objects WHERE module = 'locations' AND owner_id = 0 AND oid_key = 'X' "
                      "ORDER BY id LIMIT 1")
    async with cpo.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plans = [" ".join(r[3] for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
                     for sql in (find_any_owner, SQLITE_SQL.replace("?", "'x'"))]
            assert all("USING COVERING INDEX ix_objects_oid" in p or "USING INDEX ix_objects_oid" in p
                       for p in plans), plans
            assert all("TEMP B-TREE" not in p for p in plans), plans
        else:
            # Too few rows for the planner to want an index: tell it to, to see that one fits.
            await conn.exec_driver_sql("SET enable_seqscan = off")
            sql = PG_SQL.replace("$1", "'locations'").replace("$2", "'x'").replace("$3", "'a'").replace("$4", "'b'")
            plans = [" ".join(r[0] for r in await conn.execute(sa.text("EXPLAIN " + s)))
                     for s in (find_any_owner, sql)]
            assert all("ix_objects_oid" in p for p in plans), plans
