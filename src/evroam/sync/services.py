"""What module code may use of the node that runs it.

Module packages sit below `evroam.node` (import-linter's layers contract),
so owner-side helpers that take "the node" (sessions/owner.start,
commands/client.send_command, …) are typed with this Protocol, which Node
satisfies, instead of importing Node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from evroam.client.ocpi import OcpiClient
    from evroam.config import NodeConfig
    from evroam.hooks import Hooks
    from evroam.store.parties import Party
    from evroam.sync.delivery import DeliveryWorker


class NodeServices(Protocol):
    config: NodeConfig
    engine: AsyncEngine
    client: OcpiClient | None
    hooks: Hooks
    delivery: DeliveryWorker | None

    async def party(self, name: str) -> Party: ...
