"""Where a Hub keeps the ConnectionStatus it sets for a platform
(parties.hub_status, hub_status_at), and what a status that cuts a platform
off does to its queue.

Only the stored column is here; the ClientInfo objects the Hub publishes for
it are the HubClientInfo module's (modules/hubclientinfo/owner.py).
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.ocpi.types import utcnow
from evroam.store import outbox as outbox_repo
from evroam.store import parties as party_repo
from evroam.store.tables import outbox, parties

# A party in one of these gets nothing queued (transport_and_format, "Broadcast Push").
CUT_OFF = frozenset({ConnectionStatus.OFFLINE, ConnectionStatus.SUSPENDED, ConnectionStatus.PLANNED})


async def set_hub_status(conn: AsyncConnection, registration_id: int, status: ConnectionStatus, *,
                         only_from: Collection[ConnectionStatus] | None = None) -> bool:
    """Store `status` for a REGISTERED platform; with `only_from`, only if
    its stored status is one of those (never stored counts as CONNECTED), so
    that liveness never lifts an operator's SUSPENDED. True if it changed."""
    conds = [parties.c.id == registration_id, parties.c.status == party_repo.REGISTERED]
    current = sa.func.coalesce(parties.c.hub_status, ConnectionStatus.CONNECTED.value)
    conds.append(current != status.value)
    if only_from is not None:
        conds.append(current.in_([s.value for s in only_from]))
    now = utcnow()
    result = await conn.execute(parties.update().where(*conds)
                                .values(hub_status=status.value, hub_status_at=now, updated_at=now))
    return bool(result.rowcount)


async def mark_unregistered(conn: AsyncConnection, registration_id: int) -> None:
    """An unregistered platform is SUSPENDED for the others (hub/directory.status_of)."""
    now = utcnow()
    await conn.execute(parties.update().where(parties.c.id == registration_id)
                       .values(hub_status=ConnectionStatus.SUSPENDED.value, hub_status_at=now))


async def drop_pending(conn: AsyncConnection, registration_id: int) -> int:
    """Forget what is queued for a platform that went OFFLINE or SUSPENDED:
    the spec drops such deliveries rather than queue them; the party re-syncs
    with a GET when it is back. Dead letters stay for the operator."""
    result = await conn.execute(outbox.delete().where(outbox.c.party_id == registration_id,
                                                      outbox.c.status == outbox_repo.PENDING))
    return result.rowcount or 0


async def unqueue(conn: AsyncConnection, registration_ids: Collection[int], object_pks: Collection[int]) -> None:
    """Take these objects' pending deliveries to these platforms back out of the queue."""
    if registration_ids and object_pks:
        await conn.execute(outbox.delete().where(outbox.c.party_id.in_(list(registration_ids)),
                                                 outbox.c.object_pk.in_(list(object_pks)),
                                                 outbox.c.status == outbox_repo.PENDING))
