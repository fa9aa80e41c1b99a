"""Long-running asyncio tasks owned by a component (call-log flusher, delivery,
scheduled pulls, lag monitor, call-log pruning).

A leaf module with no evroam imports, so every layer may use it.
"""

from __future__ import annotations

import asyncio
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

    async def stop(self, timeout_s: float = 30.0) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        # Cancelled once, then given time to wind down (the delivery worker
        # records its last batch). A library that turns a cancellation into
        # its own error (a driver interrupted mid-query) could leave a loop
        # running: cancelled again, and abandoned loudly rather than hanging.
        task.cancel()
        await asyncio.wait({task}, timeout=timeout_s)
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=min(5.0, timeout_s))
        if not task.done():
            log.error("background.stop_timed_out", task=self.name, timeout_s=timeout_s)
        elif not task.cancelled() and task.exception() is not None:
            log.error("background.ended_with_error", task=self.name, error=repr(task.exception()))


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
            if _cancelling():
                raise
            log.exception(event)
        await asyncio.sleep(interval_s)


def _cancelling() -> bool:
    """True when this task was asked to stop, even if the step turned the
    cancellation into another error."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
