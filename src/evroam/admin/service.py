"""What the admin API needs of the node that mounts it.

The node (evroam.node.Node) builds and mounts the admin app, so admin must
not import it back: it is handed something of this shape, and the routers
pass it on to the module functions that act (send a command, change a
session). Node satisfies it as it is.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.config import NodeConfig
from evroam.sync.delivery import DeliveryWorker


class NodeService(Protocol):
    config: NodeConfig
    engine: AsyncEngine
    # Woken after a change of ours is queued; None where this process delivers nothing.
    delivery: DeliveryWorker | None
