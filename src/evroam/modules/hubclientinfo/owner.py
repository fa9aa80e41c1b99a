"""HubClientInfo on the Hub (the owner): when a platform's ConnectionStatus
changes, the Hub stores it (parties.hub_status) and publishes one ClientInfo
per role of that platform as its own objects, through the one write path
(sync/own.py), so they reach every registered party with a hubclientinfo
Receiver through the outbox (docs/hub/clientinfo.md).

The functions take the node (engine, config, and, when running, its Hub's
directory cache and delivery worker): the modules may not import it.

A ClientInfo is keyed by country_code/party_id (the Receiver's URL is
{country_code}/{party_id}), so two roles of one platform under the same
country_code/party_id share one object; their status is the platform's anyway.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import structlog

from evroam.hub import status as hub_status
from evroam.hub.directory import status_of
from evroam.modules.hubclientinfo import MODULE
from evroam.ocpi.common import Role
from evroam.ocpi.hubclientinfo import ClientInfo, ConnectionStatus
from evroam.ocpi.types import utcnow
from evroam.store import objects
from evroam.store import parties as party_repo
from evroam.store.objects import object_key
from evroam.store.parties import Party
from evroam.sync import own

log = structlog.get_logger(__name__)

REGISTERED, UNREGISTERED = "registered", "unregistered"


def client_infos(party: Party) -> list[ClientInfo]:
    """The ClientInfo of each role of a platform, with its current status."""
    status, now = status_of(party), utcnow()
    out: dict[tuple[str, str], ClientInfo] = {}
    for r in party.roles or ():
        try:
            role = Role(r.get("role", ""))
        except ValueError:
            continue
        info = ClientInfo(party_id=r["party_id"], country_code=r["country_code"], role=role, status=status,
                          last_updated=now)
        out.setdefault((info.country_code.upper(), info.party_id.upper()), info)
    return list(out.values())


async def set_status(node: Any, registration_id: int, status: ConnectionStatus, *,
                     only_from: Collection[ConnectionStatus] | None = None) -> list[ClientInfo] | None:
    """Set a REGISTERED platform's status and tell every connected party;
    None (nothing done) when it already had that status, or not one of
    `only_from`, or is not registered."""
    async with node.engine.begin() as conn:
        if not await hub_status.set_hub_status(conn, registration_id, status, only_from=only_from):
            return None
        infos = await _publish(node, conn, registration_id)
    _changed(node, registration_id, status)
    return infos


async def on_registration(node: Any, registration_id: int, event: str) -> list[ClientInfo]:
    """The credentials handshake registered (CONNECTED) or unregistered
    (SUSPENDED) a platform on this Hub."""
    async with node.engine.begin() as conn:
        if event == UNREGISTERED:
            await hub_status.mark_unregistered(conn, registration_id)
        else:
            await party_repo.update(conn, registration_id, hub_status=ConnectionStatus.CONNECTED.value,
                                    hub_status_at=utcnow())
        infos = await _publish(node, conn, registration_id)
    _changed(node, registration_id, infos[0].status if infos else None)
    return infos


async def _publish(node: Any, conn, registration_id: int) -> list[ClientInfo]:
    party = await party_repo.get(conn, registration_id)
    if party is None:
        return []
    infos = client_infos(party)
    ours = own.Ours.of(node.config)
    pks = []
    for info in infos:
        await own.write(conn, MODULE, info, ours)
        pks.append((await objects.get(conn, object_key(MODULE, info))).pk)
    # Its own status is news for the others only (and during its registration it
    # could not take it yet); a platform that is cut off gets nothing queued.
    cut_off = {p.id for p in await party_repo.list_all(conn) if status_of(p) in hub_status.CUT_OFF}
    await hub_status.unqueue(conn, cut_off | {registration_id}, pks)
    if status_of(party) in hub_status.CUT_OFF:
        dropped = await hub_status.drop_pending(conn, registration_id)
        if dropped:
            log.info("hubclientinfo.deliveries_dropped", party=party.name, deliveries=dropped)
    return infos


def _changed(node: Any, registration_id: int, status: ConnectionStatus | None) -> None:
    hub = getattr(node, "hub", None)
    if hub is not None:
        hub.directory.invalidate()
    delivery = getattr(node, "delivery", None)
    if delivery is not None:
        delivery.notify()
    log.info("hubclientinfo.status", registration=registration_id, status=status.value if status else None)


class NotAllowed(ValueError):
    """An operator's status change that cannot be made (no such platform, not registered, not a Hub)."""


async def operator_set(node: Any, name: str, status: ConnectionStatus) -> tuple[Party, list[ClientInfo] | None]:
    """`evroam partners suspend` (SUSPENDED) and `partners resume`
    (CONNECTED) of a registered platform; None when it already was so.
    Resume lifts a suspension only: an OFFLINE platform is liveness's."""
    if not any(r.role == Role.HUB for r in node.config.roles):
        raise NotAllowed("this node plays no HUB role: only a Hub suspends the parties connected to it")
    async with node.engine.connect() as conn:
        party = await party_repo.by_name(conn, name)
    if party is None:
        raise NotAllowed(f"no partner named {name!r}")
    if party.status != party_repo.REGISTERED:
        raise NotAllowed(f"partner {name!r} is not registered ({party.status})")
    only_from = {ConnectionStatus.SUSPENDED} if status == ConnectionStatus.CONNECTED else None
    return party, await set_status(node, party.id, status, only_from=only_from)
