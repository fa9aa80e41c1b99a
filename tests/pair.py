"""Two registered nodes, a CPO and an eMSP, for integration tests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from evroam.node import Node
from evroam.store import objects
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from tests.partners import CPO, EMSP, party_named

ADMIN_TOKEN = "admin-" + "x" * 26


async def registered_pair(cluster):
    """(CPO, eMSP, token A, the CPO as the eMSP knows it)."""
    cpo = await cluster.node("cpo", CPO)
    emsp = await cluster.node("emsp", EMSP)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(versions_url, token_a)
    return cpo, emsp, token_a, party


async def admin_pair(cluster, cpo_settings: dict | None = None, emsp_settings: dict | None = None):
    """(CPO, eMSP, the CPO as the eMSP knows it), both with the admin API on (ADMIN_TOKEN)."""
    cpo = await cluster.node("cpo", CPO, admin_token=ADMIN_TOKEN, **(cpo_settings or {}))
    emsp = await cluster.node("emsp", EMSP, admin_token=ADMIN_TOKEN, **(emsp_settings or {}))
    token_a, versions_url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(versions_url, token_a)
    return cpo, emsp, party


@dataclass
class Pair:
    cpo: Node
    emsp: Node
    cpo_at_emsp: Party  # the CPO, as the eMSP knows it
    emsp_at_cpo: Party  # the eMSP, as the CPO knows it

    def rx(self, module: str, *path: str) -> str:
        """The eMSP's Receiver URL (what the CPO pushes to)."""
        return "/".join([self.emsp_at_cpo.endpoint_url(module, "RECEIVER"), *(quote(p, safe="") for p in path)])

    def tx(self, module: str) -> str:
        """The CPO's Sender URL (what the eMSP pulls from)."""
        return self.cpo_at_emsp.endpoint_url(module, "SENDER")

    @property
    def as_cpo(self) -> str:
        return self.emsp_at_cpo.token_out

    @property
    def as_emsp(self) -> str:
        return self.cpo_at_emsp.token_out

    async def at_emsp(self, module: str, oid: str, cc: str = "NL", pid: str = "CPO"):
        async with self.emsp.engine.connect() as conn:
            return await objects.get(conn, ObjectKey(module, self.cpo_at_emsp.id, cc, pid, oid))

    async def doc_at_emsp(self, module: str, oid: str) -> dict | None:
        s = await self.at_emsp(module, oid)
        return json.loads(s.data) if s else None


async def pair(cluster, before: Callable[[Node], Awaitable[None]] | None = None, **cpo_settings: object) -> Pair:
    """A Pair; `before` runs on the CPO before the eMSP registers."""
    cpo = await cluster.node("cpo", CPO, **cpo_settings)
    emsp = await cluster.node("emsp", EMSP)
    if before is not None:
        await before(cpo)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    cpo_at_emsp = await emsp.handshake.register(versions_url, token_a)
    return Pair(cpo, emsp, cpo_at_emsp, await party_named(cpo, "emsp"))
