"""Long-running asyncio tasks owned by a component (call-log flusher, delivery,
scheduled pulls, lag monitor, call-log pruning).

A leaf module with no evroam imports, so every layer may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Background:
    """One named task: started at most once, cancelled and awaited on stop,
    so a stopped component leaves nothing running behind it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[Any] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, run: Callable[[], Awaitable[Any]]) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(run())
            self._task.set_name(self.name)

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def every(interval_s: float, step: Callable[[], Awaitable[Any]], *, event: str,
                first_delay_s: float = 0.0) -> None:
    """Run `step` forever, `interval_s` apart. A failing step is logged as
    `event` and the loop goes on: one bad round must not end the work."""
    if first_delay_s:
        await asyncio.sleep(first_delay_s)
    while True:
        try:
            await step()
        except Exception:
            log.exception(event)
        await asyncio.sleep(interval_s)
