"""A stopping component never hangs on its background task."""

import asyncio

from evroam.background import Background, every


class Swallowing:
    """A step that turns its cancellation into another error, as a database
    driver interrupted in the middle of a query can."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("connection was closed in the middle of operation") from None


async def test_stop_ends_a_loop_whose_step_swallows_the_cancel():
    step = Swallowing()
    bg = Background("swallowing")
    bg.start(lambda: every(0.0, step, event="test.step_failed"))
    while step.calls == 0:
        await asyncio.sleep(0)
    await asyncio.wait_for(bg.stop(timeout_s=5), timeout=10)
    assert not bg.running and step.calls == 1


async def test_stop_gives_up_on_a_task_that_never_ends():
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            try:
                await released.wait()
            except asyncio.CancelledError:
                continue

    bg = Background("stubborn")
    bg.start(stubborn)
    task = bg._task
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bg.stop(timeout_s=0.3)
    assert loop.time() - started < 2 and not bg.running
    assert task is not None and not task.done()
    released.set()
    await asyncio.wait_for(task, timeout=5)
