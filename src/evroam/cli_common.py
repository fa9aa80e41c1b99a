"""What every `evroam` command group shares: the --home option, consoles, and
running a coroutine against a started node."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import structlog
import typer
from rich.console import Console

from evroam.config import NodeConfig

if TYPE_CHECKING:
    from evroam.node import Node

Home = Annotated[Path, typer.Option("--home", envvar="EVROAM_HOME",
                                    help="The node's home folder (config and SQLite database).")]

LogLevel = Annotated[Optional[str], typer.Option(
    "--log-level", envvar="EVROAM_LOG_LEVEL",
    help="debug, info, warning, error or critical (default: log_level in evroam.toml, else info).")]

log = structlog.get_logger("evroam.cli")

# Rich cuts everything at 80 columns when it cannot ask a terminal; a table
# piped to a file or `grep` must keep whole URLs and ids instead.
PIPE_WIDTH = 10_000


def make_console(stderr: bool = False, **kw: Any) -> Console:
    """A rich console: the terminal's width on a terminal (or $COLUMNS when
    set), otherwise wide enough that nothing is cut or wrapped."""
    probe = Console(stderr=stderr, **kw)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=stderr, width=PIPE_WIDTH, **kw)


console = make_console()
err = make_console(stderr=True)


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


def install_hooks(node: Node, spec: str | None) -> None:
    """`--hooks` (or `hooks` in evroam.toml) for serve and worker: one JSON
    line (`hooks.load_failed`, like every line these processes print) and
    exit 2 when the module cannot be used."""
    from evroam.hooks import HookLoadError

    try:
        node.install_hooks(spec)
    except HookLoadError as exc:
        log.error("hooks.load_failed", error=str(exc))
        raise typer.Exit(2) from None


HooksOption = Annotated[Optional[str], typer.Option(
    "--hooks", help="A module whose setup(node) registers business hooks: a dotted name importable from the "
                    "current directory, or a .py file (default: `hooks` in evroam.toml).")]


async def with_node(home: Path, fn: Callable[[Node], Awaitable[Any]]) -> Any:
    """Start the node of `home` (database and client, no HTTP), run fn, stop it."""
    from evroam.node import Node

    node = Node(load_config(home))
    await node.start()
    try:
        return await fn(node)
    finally:
        await node.stop()


# --- long-running processes: `serve`, `worker` ----------------------------------------------


def service_config(home: Path, log_level: str | None, **overrides: Any) -> NodeConfig:
    """Logging first (every line a process prints is JSON, errors included),
    then the config; `--log-level` and other options given win over evroam.toml."""
    from evroam.logs import configure, parse_level

    configure()
    if log_level:
        configure(_level_or_exit(log_level, parse_level))
    try:
        cfg = NodeConfig.load(home)
    except FileNotFoundError as exc:
        log.error("config.not_found", home=str(home), error=str(exc))
        raise typer.Exit(2) from None
    if log_level:
        cfg.log_level = log_level
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    configure(_level_or_exit(cfg.log_level, parse_level))
    return cfg


def _level_or_exit(name: str, parse: Callable[[str], int]) -> int:
    try:
        return parse(name)
    except ValueError as exc:
        log.error("config.bad_log_level", error=str(exc))
        raise typer.Exit(2) from None


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM (Docker, Kubernetes, systemd) or SIGINT, so a
    process drains and stops the same way for either, and exits 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, _stop_handler(stop, sig))
    return stop


def _stop_handler(stop: asyncio.Event, sig: signal.Signals) -> Callable[[], None]:
    def handle() -> None:
        log.info("signal.received", signal=sig.name)
        stop.set()
    return handle


def run_service(coro: Awaitable[Any], name: str) -> None:
    """Run a process's main coroutine; a crash becomes one JSON line (with
    its traceback inside) and exit 1, never a bare traceback."""
    try:
        run(coro)
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were in place
        pass
    except Exception as exc:
        log.exception(f"{name}.crashed", error=f"{type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
