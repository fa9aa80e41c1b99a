"""Assembling a node's Hub: its handlers and the endpoints it publishes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evroam.config import NodeConfig
from evroam.hub import broadcast, forward, openrouting
from evroam.hub.directory import DirectoryCache
from evroam.hub.getall import get_all
from evroam.hub.layer import Hub, routed_module
from evroam.module import REGISTRY
from evroam.ocpi.common import Role
from evroam.ocpi.types import ci_key
from evroam.ocpi.versions import Endpoint, InterfaceRole


def hub_role(config: NodeConfig):
    """Our HUB role, if we play one."""
    return next((r for r in config.roles if r.role == Role.HUB), None)


def build(config: NodeConfig, engine: Any, session: Callable[[], Any], call_log: Any = None) -> Hub | None:
    role = hub_role(config)
    if role is None:
        return None
    return Hub(engine=engine, key=(ci_key(role.country_code), ci_key(role.party_id)), public_url=config.public_url,
               directory=DirectoryCache(engine), session=session, call_log=call_log,
               forward_timeout_s=config.hub_forward_timeout_s, forward=forward.forward,
               callback=forward.callback, open_route=openrouting.open_route, get_all=get_all,
               broadcast=broadcast.broadcast, after_forward=[openrouting.Learner()])


def addressing(hub: Hub) -> broadcast.HubAddressing:
    """How the Hub's delivery worker addresses what it sends (broadcasts: FROM = the Hub)."""
    return broadcast.HubAddressing(hub.key)


def endpoints(hub: Hub, version: str) -> list[Endpoint]:
    """Both interfaces of every routed module: a party reaches every other
    through the Hub's endpoints (with a trailing slash, as we publish all)."""
    out = []
    for module_id in REGISTRY:
        m = routed_module(module_id)
        if m is None:
            continue
        ifaces = set(m.interfaces.values())
        for iface in (InterfaceRole.SENDER, InterfaceRole.RECEIVER):
            if iface in ifaces:
                out.append(Endpoint(identifier=module_id, role=iface,
                                    url=hub.endpoint_url(version, module_id, iface) + "/"))
    return out
