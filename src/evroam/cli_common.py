"""What every `evroam` command group shares: the --home option, consoles, and
running a coroutine against a started node."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from evroam.config import NodeConfig

if TYPE_CHECKING:
    from evroam.node import Node

Home = Annotated[Path, typer.Option("--home", envvar="EVROAM_HOME",
                                    help="The node's home folder (config and SQLite database).")]

console = Console()
err = Console(stderr=True)


def run(coro: Awaitable[Any]) -> Any:
    """asyncio.run on uvloop when it is installed (it comes with
    uvicorn[standard] on Linux): every request, database call (aiosqlite hops
    threads through the loop) and outbound call goes through the loop, and
    uvloop makes each hop cheaper (about +25 % receiver throughput measured)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, or a minimal install
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def load_config(home: Path) -> NodeConfig:
    try:
        return NodeConfig.load(home)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


async def with_node(home: Path, fn: Callable[[Node], Awaitable[Any]]) -> Any:
    """Start the node of `home` (database and client, no HTTP), run fn, stop it."""
    from evroam.node import Node

    node = Node(load_config(home))
    await node.start()
    try:
        return await fn(node)
    finally:
        await node.stop()
