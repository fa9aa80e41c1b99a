"""Helpers for the bad-input and limits tests (tests/integration/test_limits.py):
a registered CPO/eMSP pair with the admin API, raw HTTP calls, and small
valid objects to spoil."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from evroam.ocpi.headers import encode_token
from evroam.store import parties as party_repo
from tests.partners import CPO, EMSP

ADMIN_TOKEN = "limits-" + "x" * 25
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-02-01T00:00:00Z"


def nested(depth: int) -> bytes:
    """A JSON object with `depth` levels of nesting inside a valid-looking PATCH."""
    return b'{"last_updated": "2026-02-01T00:00:00Z", "name": ' + b"[" * depth + b"]" * depth + b"}"


def connector(cid: str = "1", **extra: Any) -> dict:
    return {"id": cid, "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
            "max_voltage": 230, "max_amperage": 32, "last_updated": T0, **extra}


def evse(uid: str = "E1", connectors: list | None = None) -> dict:
    return {"uid": uid, "evse_id": f"NL*CPO*E{uid}", "status": "AVAILABLE",
            "connectors": connectors if connectors is not None else [connector()], "last_updated": T0}


def location(lid: str = "L1", evses: list | None = None, **extra: Any) -> dict:
    return {"country_code": "NL", "party_id": "CPO", "id": lid, "publish": True, "address": "Main St 1",
            "city": "Utrecht", "country": "NLD", "coordinates": {"latitude": "52.090000", "longitude": "5.120000"},
            "evses": evses if evses is not None else [evse()], "time_zone": "Europe/Amsterdam",
            "last_updated": T0, **extra}


def cdr_token() -> dict:
    return {"country_code": "DE", "party_id": "EMS", "uid": "TOK1", "type": "RFID", "contract_id": "DE-EMS-C1"}


async def pair(cluster, emsp_settings: dict | None = None, **cpo_settings: Any):
    """A CPO (with the admin API) and an eMSP registered with it; the eMSP's
    party at the CPO and the CPO's party at the eMSP (each holds the token
    its node calls the other with, and the other's endpoints)."""
    cpo = await cluster.node("cpo", CPO, admin_token=ADMIN_TOKEN, **cpo_settings)
    emsp = await cluster.node("emsp", EMSP, admin_token=ADMIN_TOKEN, **(emsp_settings or {}))
    token_a, versions_url = await cpo.handshake.invite("emsp")
    cpo_at_emsp = await emsp.handshake.register(versions_url, token_a)
    async with cpo.engine.connect() as conn:
        emsp_at_cpo = await party_repo.by_name(conn, "emsp")
    return cpo, emsp, emsp_at_cpo, cpo_at_emsp


async def call(method: str, url: str, token: str | None, *, body: object = None, raw: bytes | None = None,
               bearer: bool = False) -> tuple[int, Any]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}" if bearer else encode_token(token)
    kw: dict[str, Any] = {}
    if raw is not None:
        kw["data"] = raw
        headers["Content-Type"] = "application/json"
    elif body is not None:
        kw["json"] = body
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=headers, **kw) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def admin(node, method: str, path: str, *, body: object = None, raw: bytes | None = None):
    return await call(method, f"{node.config.public_url}/admin{path}", ADMIN_TOKEN, body=body, raw=raw, bearer=True)


async def raw_exchange(url: str, head: bytes, chunks: list[bytes]) -> tuple[int, dict]:
    """Send a request head and some body bytes on a plain socket, then read
    the answer: a body limit has to answer before the body is complete."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                break  # the server answered and closed while we were still sending
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in rest.lower().partition(b"\r\n\r\n")[0]:
        body = _dechunk(body)
    return int(status_line.split()[1]), json.loads(body)


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2:]
    return bytes(out)
