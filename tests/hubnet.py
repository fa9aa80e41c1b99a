"""A roaming network for the Hub tests: one Hub node and parties that
register with it by the normal handshake, as `evroam partners invite` on the
Hub and `evroam partners register` at each party would."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from evroam.node import Node
from evroam.ocpi import headers as H
from evroam.store.parties import Party
from tests.partners import party_named

HUB = [("HUB", "NL", "HUB")]
CPO1 = [("CPO", "NL", "CPO")]
CPO2 = [("CPO", "BE", "CP2")]
EMSP1 = [("EMSP", "DE", "EMS")]
EMSP2 = [("EMSP", "FR", "EM2")]


@dataclass
class Net:
    hub: Node
    nodes: dict[str, Node] = field(default_factory=dict)
    # name -> the Hub, as that party knows it (its endpoints, its token for the Hub)
    hub_at: dict[str, Party] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    async def at_hub(self, name: str) -> Party:
        """The party's platform, as the Hub knows it."""
        return await party_named(self.hub, name)

    def url(self, name: str, module: str, iface: str, *path: str) -> str:
        """The Hub's endpoint for `module`/`iface`, as party `name` was told it."""
        base = self.hub_at[name].endpoint_url(module, iface)
        return "/".join([base.rstrip("/"), *path])

    def token(self, name: str) -> str:
        return self.hub_at[name].token_out


async def hub_network(cluster, parties: dict[str, list[tuple[str, str, str]]], **hub_settings: object) -> Net:
    hub = await cluster.node("hub", HUB, **hub_settings)
    net = Net(hub)
    for name, roles in parties.items():
        node = await cluster.node(name, roles)
        token_a, versions_url = await hub.handshake.invite(name)
        net.hub_at[name] = await node.handshake.register(versions_url, token_a)
        net.nodes[name] = node
    return net


def routing(frm: tuple[str, str] | None, to: tuple[str, str] | None) -> dict[str, str]:
    h = {}
    if frm:
        h.update({"OCPI-from-country-code": frm[0], "OCPI-from-party-id": frm[1]})
    if to:
        h.update({"OCPI-to-country-code": to[0], "OCPI-to-party-id": to[1]})
    return h


async def call(method: str, url: str, token: str, *, frm=None, to=None, body: bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    """One raw HTTP call: (status, envelope, headers lower-cased)."""
    hdrs = {"Authorization": H.encode_token(token), "X-Request-ID": "req-1", "X-Correlation-ID": "corr-1",
            **routing(frm, to), **(headers or {})}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as s, s.request(method, url, data=body, headers=hdrs,
                                                       allow_redirects=False) as resp:
        return resp.status, await resp.json(content_type=None), {k.lower(): v for k, v in resp.headers.items()}
