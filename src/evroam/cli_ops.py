"""Operations commands: bulk data import, partners' sync status and dead
letters, on-demand pulls, and the worker process.

    evroam data import --home DIR --module locations FILE…
    evroam partners status --home DIR [--json]
    evroam partners retry --home DIR NAME
    evroam partners suspend --home DIR NAME   (a Hub: the party is SUSPENDED)
    evroam partners resume --home DIR NAME    (a Hub: CONNECTED again)
    evroam sync pull --home DIR PARTNER [MODULE] [--full]
    evroam worker --home DIR

Names and flags here are a contract used from outside: keep them stable.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import structlog
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evroam.cli_common import Home, HooksOption, LogLevel, console, err, install_hooks, run, run_service, service_config, stop_on_signals
from evroam.cli_common import with_node as _with_node

if TYPE_CHECKING:
    from evroam.node import Node

log = structlog.get_logger(__name__)


MAX_ERRORS_SHOWN = 20


def _group(app: typer.Typer, name: str, help_: str) -> typer.Typer:
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(help=help_, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `evroam` app (idempotent)."""
    if any(info.name == "data" for info in app.registered_groups):
        return
    partners = _group(app, "partners", "Partners: invite, register, list, rotate tokens, remove.")
    data = _group(app, "data", "Our own objects in bulk.")
    sync = _group(app, "sync", "Synchronisation with partners on demand.")
    partners.command("status")(partners_status)
    partners.command("retry")(partners_retry)
    partners.command("suspend")(partners_suspend)
    partners.command("resume")(partners_resume)
    data.command("import")(data_import)
    sync.command("pull")(sync_pull)
    app.command("worker")(worker)


# --- evroam data import ----------------------------------------------------------------------


def data_import(
    home: Home,
    module: Annotated[str, typer.Option("--module", help="locations, tariffs, tokens, sessions or cdrs.")],
    files: Annotated[list[Path], typer.Argument(help="OCPI JSON files: one object or a list of objects each.")],
) -> None:
    """Load our own objects from OCPI JSON files and queue them for partners.

    Each file is validated as a whole and written in one transaction: a file
    with any invalid object writes nothing (its errors name file and index).
    Exits 1 if any file failed."""
    import evroam.modules  # noqa: F401  (registers the modules that importable() lists)
    from evroam.sync.importer import import_files, importable

    if module not in importable():
        raise typer.BadParameter(f"one of {', '.join(importable())}", param_hint="--module")
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err)

    async def go(node: Node):
        with progress:
            task = progress.add_task(f"importing {module}", total=0)

            def loaded(path: Path, n: int) -> None:
                progress.update(task, total=(progress.tasks[0].total or 0) + n, description=path.name)

            def written(n: int) -> None:
                progress.advance(task, n)

            return await import_files(node.engine, module, files, node.config.roles, on_loaded=loaded,
                                      on_written=written, config=node.config)

    reports = run(_with_node(home, go))
    failed = 0
    for r in reports:
        if r.ok:
            console.print(f"[green]ok[/green]     {r.path}: {r.objects} objects ({r.created} created, "
                          f"{r.updated} updated, {r.unchanged} unchanged)", soft_wrap=True)
            continue
        failed += 1
        console.print(f"[red]FAILED[/red] {r.path}: nothing written ({len(r.errors)} errors)", soft_wrap=True)
        for line in r.errors[:MAX_ERRORS_SHOWN]:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        if len(r.errors) > MAX_ERRORS_SHOWN:
            err.print(f"{r.path}: … and {len(r.errors) - MAX_ERRORS_SHOWN} more", markup=False, soft_wrap=True)
    written = sum(r.created + r.updated for r in reports)
    console.print(f"{len(reports) - failed} of {len(reports)} files imported; {written} objects queued for partners")
    if failed:
        raise typer.Exit(1)


# --- evroam partners status / retry ------------------------------------------------------------


def partners_status(
    home: Home,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per partner: deliveries pending and dead, push lag, and the last pull of each module.

    Push lag is the age of the oldest change not yet delivered (0 when none).
    Under a Hub, each party behind it: its role, country code/party id, the
    ClientInfo status the Hub reported and its own pulls (`behind` in JSON)."""
    from evroam.modules.hubclientinfo.behind import parties_behind
    from evroam.store import parties as repo
    from evroam.sync.lag import health
    from evroam.server.routing import is_hub

    async def go(node: Node):
        rows = await health(node.engine)
        async with node.engine.connect() as conn:
            hubs = {p.id for p in await repo.list_all(conn) if is_hub(p)}
            return rows, {i: await parties_behind(conn, i) for i in hubs}

    rows, behind = run(_with_node(home, go))
    if as_json:
        out = [h.to_json() | ({"behind": _behind_json(h, behind[h.party_id])} if h.party_id in behind else {})
               for h in rows]
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    table = Table(title="Partners' sync")
    for col in ("name", "status", "pending", "dead", "push lag", "last pulls"):
        table.add_column(col)
    for h in rows:
        pulls = _pull_lines(h.pulls)
        for b in behind.get(h.party_id, ()):
            key = f"{b.country_code}/{b.party_id}".upper()
            pulls.append(f"behind the Hub: {b.role} {b.country_code}/{b.party_id} {b.status.value}")
            pulls += ["  " + line for line in _pull_lines(h.owner_pulls.get(key, {}))]
        lag = f"{h.lag_s:.1f} s" if h.pending else "0"
        dead = f"[red]{h.dead}[/red]" if h.dead else "0"
        table.add_row(h.name, h.status, str(h.pending), dead, lag, "\n".join(pulls) or "-")
    console.print(table)


def _pull_lines(pulls) -> list[str]:
    out = []
    for module, p in pulls.items():
        when = p.last_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if p.last_attempt_at else "never"
        state = f"[red]{p.last_error}[/red]" if p.last_error else f"ok ({p.objects_seen or 0})"
        out.append(f"{module}: {when} {state}")
    return out


def _behind_json(h, parties) -> list[dict]:
    """The parties behind a Hub partner, each with its ClientInfo status and its own pulls."""
    pulls = h.to_json()["owner_pulls"]
    return [{"country_code": b.country_code, "party_id": b.party_id, "role": b.role, "status": b.status.value,
             "last_updated": b.last_updated, "pulls": pulls.get(f"{b.country_code}/{b.party_id}".upper(), {})}
            for b in parties]


def partners_retry(home: Home, name: Annotated[str, typer.Argument(help="The partner's name.")]) -> None:
    """Put a partner's dead-lettered deliveries back in line.

    The worker then sends each object's current state."""
    from evroam.store import outbox
    from evroam.store import parties as repo

    async def go(node: Node):
        async with node.engine.begin() as conn:
            party = await repo.by_name(conn, name)
            if party is None:
                return None
            return await outbox.retry_dead(conn, party.id)

    n = run(_with_node(home, go))
    if n is None:
        err.print(f"[red]no partner named {name!r}[/red]")
        raise typer.Exit(1)
    console.print(f"{n} dead deliveries back in line for {name}")


def partners_suspend(home: Home, name: Annotated[str, typer.Argument(help="The partner's name.")]) -> None:
    """A Hub: set a partner SUSPENDED; every connected party is told (HubClientInfo).

    Nothing is routed to it or queued for it until `partners resume`. Works on
    the home's database: a running Hub sees it within a second, and its worker
    delivers the ClientInfo."""
    _set_status(home, name, "SUSPENDED", "suspended")


def partners_resume(home: Home, name: Annotated[str, typer.Argument(help="The partner's name.")]) -> None:
    """A Hub: lift a partner's suspension (CONNECTED); every connected party is told."""
    _set_status(home, name, "CONNECTED", "resumed")


def _set_status(home: Path, name: str, status: str, done: str) -> None:
    from evroam.modules.hubclientinfo import owner
    from evroam.ocpi.hubclientinfo import ConnectionStatus

    async def go(node: Node):
        return await owner.operator_set(node, name, ConnectionStatus(status))

    try:
        _party, infos = run(_with_node(home, go))
    except owner.NotAllowed as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    if infos is None:
        console.print(f"{name} was already {status} (nothing pushed)" if status == "SUSPENDED"
                      else f"{name} is not suspended (nothing pushed)")
        return
    parties = ", ".join(f"{i.role.value} {i.country_code}/{i.party_id}" for i in infos)
    console.print(f"{done.capitalize()} {name} ({parties}): {status}, queued for every connected party")


# --- evroam sync pull ------------------------------------------------------------------------------


def sync_pull(
    home: Home,
    partner: Annotated[str, typer.Argument(help="The partner's name.")],
    module: Annotated[Optional[str], typer.Argument(help="One module (default: every module the partner sends us).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Full pull (marks what the partner no longer has as stale) instead of a delta.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Pull from a partner's Sender interfaces now. Exits 1 if any pull failed."""
    from evroam.module import REGISTRY
    from evroam.store import parties as repo
    from evroam.sync.scheduler import pull_modules

    if module is not None and module not in REGISTRY.objects():
        raise typer.BadParameter(f"one of {', '.join(REGISTRY.objects())}", param_hint="MODULE")

    async def go(node: Node):
        async with node.engine.connect() as conn:
            party = await repo.by_name(conn, partner)
        if party is None:
            return None
        modules = [module] if module else pull_modules(party, [r.role for r in node.config.roles])
        return [await node.pull(partner, m, full=full) for m in modules]

    results = run(_with_node(home, go))
    if results is None:
        err.print(f"[red]no partner named {partner!r}[/red]")
        raise typer.Exit(1)
    if not results:
        err.print(f"[yellow]{partner} sends nothing this node receives[/yellow]")
    if as_json:
        out = [{"module": r.module, "full": r.full, "stored": r.stored, "kept_newer": r.kept_newer,
                "invalid": r.invalid, "foreign": r.foreign, "marked_stale": r.marked_stale, "error": r.error,
                "paging": r.paging}
               for r in results]
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        table = Table(title=f"Pulled from {partner}")
        for col in ("module", "kind", "stored", "kept newer", "invalid", "foreign", "marked stale", "error"):
            table.add_column(col)
        for r in results:
            table.add_row(r.module, "full" if r.full else "delta", str(r.stored), str(r.kept_newer),
                          str(len(r.invalid)), str(r.foreign), str(r.marked_stale), r.error or "")
        console.print(table)
        for r in results:
            if r.paging:
                err.print(f"{r.module}: {r.paging}", markup=False, soft_wrap=True)
            for line in r.invalid[:5]:
                err.print(f"{r.module} {line}", markup=False, soft_wrap=True)
    if any(r.error for r in results):
        raise typer.Exit(1)


# --- evroam worker ---------------------------------------------------------------------------------


async def run_worker(node: Node, stop: asyncio.Event) -> None:
    """What `evroam worker` runs: deliveries, scheduled pulls and the lag
    monitor, without HTTP, until `stop` is set. On PostgreSQL several of
    these (and `serve` with run_workers = false) share the work."""
    await node.start()
    node.start_workers()
    log.info("worker.started", node=node.config.name, pull_interval_s=node.config.pull_interval_s,
             lag_alert_s=node.config.lag_alert_s)
    try:
        await stop.wait()
    finally:
        await node.stop_workers()
        log.info("worker.stopped", node=node.config.name, delivered=node.delivery.delivered if node.delivery else 0)


async def _worker_main(node: Node) -> None:
    stop = stop_on_signals()
    try:
        await run_worker(node, stop)
    finally:
        await node.stop()


def worker(home: Home, hooks: HooksOption = None, log_level: LogLevel = None) -> None:
    """Deliver pushes, run scheduled pulls and watch sync lag, without serving HTTP.

    Runs until SIGTERM or SIGINT (then stops cleanly, exit 0). Logs are JSON
    lines on stderr. Run it beside `serve` with run_workers = false in
    evroam.toml; on PostgreSQL, as many as needed. Hooks that fire here: the
    Received ones, for objects that scheduled pulls bring in."""
    from evroam.node import Node

    node = Node(service_config(home, log_level))
    install_hooks(node, hooks)
    run_service(_worker_main(node), "worker")
