"""Business hooks: plain decorated coroutines, as in the `ocpp` library.

    @node.on(CommandType.START_SESSION)
    async def start(command, party): ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Hook = Callable[..., Awaitable[Any]]


class Hooks:
    def __init__(self) -> None:
        self._hooks: dict[str, Hook] = {}

    def on(self, event: Any) -> Callable[[Hook], Hook]:
        key = str(getattr(event, "value", event))

        def register(fn: Hook) -> Hook:
            self._hooks[key] = fn
            return fn

        return register

    def get(self, event: Any) -> Hook | None:
        return self._hooks.get(str(getattr(event, "value", event)))
