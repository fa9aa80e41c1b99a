"""Helpers for tests that speak raw OCPI to real nodes: one call with
exactly the headers given, registered pairs, what a node holds."""

from __future__ import annotations

from typing import Any

import aiohttp
import sqlalchemy as sa
from multidict import CIMultiDict

from evroam.ocpi.headers import encode_token
from evroam.store import parties
from evroam.store.tables import OURS, objects

T = "2026-01-01T00:00:00Z"
ROUTING = ("ocpi-from-country-code", "ocpi-from-party-id", "ocpi-to-country-code", "ocpi-to-party-id")


async def call(method: str, url: str, token: str | None, body: object = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any, CIMultiDict[str]]:
    """(HTTP status, envelope, the answer's headers, by any case of their
    names); a bytes body is sent as is, for a test of a malformed one."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = encode_token(token)
    kw: dict = {}
    if isinstance(body, bytes):
        kw["data"] = body
        h["Content-Type"] = "application/json"
    elif body is not None:
        kw["json"] = body
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=h, **kw) as r:
        return r.status, await r.json(content_type=None), CIMultiDict(r.headers)


def routing_of(headers: dict[str, str]) -> tuple[str | None, ...]:
    """(from cc, from pid, to cc, to pid) of an answer."""
    return tuple(headers.get(k) for k in ROUTING)


async def register(cluster, a: list[tuple[str, str, str]], b: list[tuple[str, str, str]]):
    """Nodes A and B; B registered with A. Returns (a, b, B's view of A, A's view of B)."""
    na = await cluster.node("a", a)
    nb = await cluster.node("b", b)
    token_a, versions_url = await na.handshake.invite("b")
    a_at_b = await nb.handshake.register(versions_url, token_a)
    async with na.engine.connect() as conn:
        b_at_a = await parties.by_name(conn, "b")
    return na, nb, a_at_b, b_at_a


async def count(node, module: str, *, ours: bool = False) -> int:
    owner = objects.c.owner_id == OURS if ours else objects.c.owner_id != OURS
    async with node.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(objects)
                                   .where(objects.c.module == module, owner))).scalar_one()
