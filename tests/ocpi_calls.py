"""Helpers for tests that speak raw OCPI to real nodes: one call with
exactly the headers given, registered pairs, and small valid objects."""

from __future__ import annotations

import aiohttp
import sqlalchemy as sa

from evroam.ocpi.headers import encode_token
from evroam.store import parties
from evroam.store.tables import OURS, objects

T = "2026-01-01T00:00:00Z"
ROUTING = ("ocpi-from-country-code", "ocpi-from-party-id", "ocpi-to-country-code", "ocpi-to-party-id")


async def call(method: str, url: str, token: str | None, body: object = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    """(HTTP status, envelope, headers with lower-cased names); a bytes body is sent as is."""
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
        return r.status, await r.json(content_type=None), {k.lower(): v for k, v in r.headers.items()}


def routing_of(headers: dict[str, str]) -> tuple[str | None, ...]:
    """(from cc, from pid, to cc, to pid) of an answer."""
    return tuple(headers.get(k) for k in ROUTING)


async def register(cluster, a: list[tuple[str, str, str]], b: list[tuple[str, str, str]]):  # noqa: ANN001, ANN201
    """Nodes A and B; B registered with A. Returns (a, b, B's view of A, A's view of B)."""
    na = await cluster.node("a", a)
    nb = await cluster.node("b", b)
    token_a, versions_url = await na.handshake.invite("b")
    a_at_b = await nb.handshake.register(versions_url, token_a)
    async with na.engine.connect() as conn:
        b_at_a = await parties.by_name(conn, "b")
    return na, nb, a_at_b, b_at_a


async def count(node, module: str, *, ours: bool = False) -> int:  # noqa: ANN001
    owner = objects.c.owner_id == OURS if ours else objects.c.owner_id != OURS
    async with node.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(objects)
                                   .where(objects.c.module == module, owner))).scalar_one()


def location(cc: str, pid: str, lid: str = "L1") -> dict:
    connector = {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                 "max_voltage": 230, "max_amperage": 32, "last_updated": T}
    return {"country_code": cc, "party_id": pid, "id": lid, "publish": True, "address": "Main 1",
            "city": "Amsterdam", "country": "NLD", "coordinates": {"latitude": "52.37000", "longitude": "4.89000"},
            "time_zone": "Europe/Amsterdam",
            "evses": [{"uid": "E1", "status": "AVAILABLE", "connectors": [connector], "last_updated": T}],
            "last_updated": T}


def session(cc: str, pid: str, token_cc: str, token_pid: str, sid: str = "S1") -> dict:
    return {"country_code": cc, "party_id": pid, "id": sid, "start_date_time": T, "kwh": 0,
            "cdr_token": {"country_code": token_cc, "party_id": token_pid, "uid": "TOK1", "type": "APP_USER",
                          "contract_id": f"{token_cc}-{token_pid}-C1"},
            "auth_method": "COMMAND", "location_id": "L1", "evse_uid": "E1", "connector_id": "1",
            "currency": "EUR", "status": "ACTIVE", "last_updated": T}


def token(cc: str, pid: str, uid: str = "APP-42") -> dict:
    return {"country_code": cc, "party_id": pid, "uid": uid, "type": "APP_USER", "contract_id": f"{cc}-{pid}-C42",
            "issuer": "eMSP", "valid": True, "whitelist": "ALLOWED", "last_updated": T}
