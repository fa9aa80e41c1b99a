"""What every `evroam` command group shares: the --home option, consoles, and
running a coroutine against a started node."""

from __future__ import annotations

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


def load_config(home: Path) -> NodeConfig:
    try:
        return NodeConfig.load(home)
    except FileNotFoundError as exc:
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
