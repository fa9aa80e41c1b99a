"""Business hooks: plain decorated coroutines, as in the `ocpp` library.

    @node.on(CommandType.START_SESSION)
    async def start(command, party): ...

    @node.on(Received.CDR)
    async def new_cdr(cdr, party): ...

A hook that raises is logged and does not undo what the protocol already did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Hook = Callable[..., Awaitable[Any]]


class Received(StrEnum):
    """An object a partner pushed to us (or we pulled), after it is stored."""

    LOCATION = "received.locations"
    TARIFF = "received.tariffs"
    SESSION = "received.sessions"
    CDR = "received.cdrs"
    TOKEN = "received.tokens"


def _key(event: Any) -> str:
    return str(getattr(event, "value", event))


class Hooks:
    def __init__(self) -> None:
        self._hooks: dict[str, Hook] = {}

    def on(self, event: Any) -> Callable[[Hook], Hook]:
        def register(fn: Hook) -> Hook:
            self._hooks[_key(event)] = fn
            return fn

        return register

    def get(self, event: Any) -> Hook | None:
        return self._hooks.get(_key(event))

    async def fire(self, event: Any, *args: Any) -> Any:
        """Call a notification hook, if any; its failure is logged, not raised."""
        fn = self.get(event)
        if fn is None:
            return None
        try:
            return await fn(*args)
        except Exception:
            log.exception("hook.failed", hook=_key(event))
            return None
