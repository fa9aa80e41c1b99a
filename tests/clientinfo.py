"""Helpers for the HubClientInfo tests: parties whose inbound HubClientInfo
requests are recorded with their headers (to check what is on the wire), and
what a party holds of the ClientInfo the Hub pushed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from evroam.node import Node, bind_socket
from evroam.store import objects
from evroam.store import parties as repo
from evroam.store.objects import ObjectKey
from tests.hubnet import Net

ROUTING = frozenset({"ocpi-from-country-code", "ocpi-from-party-id", "ocpi-to-country-code", "ocpi-to-party-id"})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    """ASGI middleware that notes every request to a hubclientinfo path."""

    app: object
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "/hubclientinfo" in scope["path"]:
            self.seen.append(Seen(scope["method"], scope["path"],
                                  {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}))
        await self.app(scope, receive, send)


async def recorded_node(cluster, name: str, roles, **settings) -> tuple[Node, list[Seen]]:
    """A served node whose inbound hubclientinfo requests are recorded."""
    node = await cluster.node(name, roles, serve=False, **settings)
    seen: list[Seen] = []
    node.app.add_middleware(Recorder, seen=seen)
    await node.serve_in_background(bind_socket("127.0.0.1", node.config.port))
    return node, seen


async def join(net: Net, name: str, node: Node) -> None:
    """Register a party with the Hub, as `evroam partners invite` / `register` would."""
    token_a, versions_url = await net.hub.handshake.invite(name)
    net.hub_at[name] = await node.handshake.register(versions_url, token_a)
    net.nodes[name] = node


async def client_info(net: Net, at: str, cc: str, pid: str) -> dict | None:
    """The ClientInfo of cc/pid that party `at` holds from the Hub."""
    async with net[at].engine.connect() as conn:
        hub = await repo.by_name(conn, net.hub_at[at].name)
        s = await objects.get(conn, ObjectKey("hubclientinfo", hub.id, cc, pid, pid))
    return json.loads(s.data) if s else None


async def status_at(net: Net, at: str, cc: str, pid: str) -> str | None:
    doc = await client_info(net, at, cc, pid)
    return doc["status"] if doc else None


async def hub_status(net: Net, name: str) -> str | None:
    return (await net.at_hub(name)).hub_status
