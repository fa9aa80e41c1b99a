"""Two registered nodes and a plain HTTP call, for integration tests."""

from __future__ import annotations

import aiohttp

from evroam.ocpi.headers import encode_token
from tests.partners import party_named  # noqa: F401 - one copy, re-exported for the pair's users

CPO = [("CPO", "NL", "CPO")]
EMSP = [("EMSP", "DE", "EMS")]


async def call(method: str, url: str, token: str | None, body: object = None, raw: bytes | None = None):
    headers = {}
    if token is not None:
        headers["Authorization"] = encode_token(token)
    async with aiohttp.ClientSession() as s:
        kw = {}
        if raw is not None:
            kw["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kw["json"] = body
        async with s.request(method, url, headers=headers, **kw) as r:
            return r.status, await r.json(content_type=None), r.headers


async def registered_pair(cluster):
    cpo = await cluster.node("cpo", CPO)
    emsp = await cluster.node("emsp", EMSP)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(versions_url, token_a)
    return cpo, emsp, token_a, party
