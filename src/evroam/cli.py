"""The `evroam` command line.

Names and flags here are a contract used from outside: keep them stable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from evroam.cli_common import Home, HooksOption, LogLevel, console, err, install_hooks, run, run_service, service_config, stop_on_signals
from evroam.cli_common import log
from evroam.cli_common import with_node as _with_node
from evroam.config import NodeConfig, RoleConfig
from evroam.ocpi.common import Role

app = typer.Typer(
    help="evroam: an OCPI 2.2.1 platform for CPOs, eMSPs, hubs and payment-terminal providers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
partners_app = typer.Typer(help="Partners: invite, register, list, rotate tokens, remove.", no_args_is_help=True)
calls_app = typer.Typer(help="The log of OCPI calls in and out.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")
app.add_typer(calls_app, name="calls")

_run = run


def _parse_role(spec: str, country: str | None, party: str | None) -> tuple[Role, str, str]:
    parts = spec.split(":")
    try:
        role = Role(parts[0].upper())
    except ValueError:
        raise typer.BadParameter(f"unknown role {parts[0]!r}; one of {', '.join(r.value for r in Role)}") from None
    if len(parts) == 3:
        return role, parts[1], parts[2]
    if len(parts) != 1 or not country or not party:
        raise typer.BadParameter("give --country and --party, or the role as ROLE:CC:PID")
    return role, country, party


@app.command()
def init(
    home: Home,
    public_url: Annotated[str, typer.Option("--public-url", envvar="EVROAM_PUBLIC_URL", help="The base URL partners reach this node at, e.g. https://ocpi.example.com.")],
    role: Annotated[list[str], typer.Option("--role", help="A role this node plays: CPO, EMSP, HUB or PTP (repeatable). ROLE:CC:PID gives a role its own country code and party id.")],
    country: Annotated[Optional[str], typer.Option("--country", help="ISO 3166 alpha-2 country code of the roles.")] = None,
    party: Annotated[Optional[str], typer.Option("--party", help="Party id (3 characters) of the roles.")] = None,
    name: Annotated[str, typer.Option("--name", help="Business name shown to partners.")] = "evroam",
    db: Annotated[Optional[str], typer.Option("--db", envvar="EVROAM_DB", help="Database URL; default: SQLite in the home folder. postgresql+asyncpg://… selects PostgreSQL.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address `serve` binds to by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port `serve` binds to by default.")] = 8080,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the config of a home that already holds a node (its partners stay registered under the identity they know).")] = False,
) -> None:
    """Write a node's configuration into its home folder and create its database.

    Refuses a home that already holds a node unless --force is given."""
    from evroam.config import CONFIG_FILE

    existing = home / CONFIG_FILE
    if existing.exists() and not force:
        # Rewriting it would change the identity partners registered with.
        err.print(f"{existing} exists: this home already holds a node{_identity(home)}. "
                  "Give --force to overwrite its configuration.", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)

    roles = []
    seen = set()
    for spec in role:
        r, cc, pid = _parse_role(spec, country, party)
        if len(cc) != 2 or not cc.isalpha():
            raise typer.BadParameter(f"country code {cc!r} must be 2 letters")
        if len(pid) != 3 or not pid.isalnum():
            raise typer.BadParameter(f"party id {pid!r} must be 3 letters or digits")
        if (r, cc.upper(), pid.upper()) in seen:
            raise typer.BadParameter(f"role {r.value} {cc}/{pid} given twice")
        seen.add((r, cc.upper(), pid.upper()))
        roles.append(RoleConfig(role=r, country_code=cc, party_id=pid, name=name))
    cfg = NodeConfig(home=home.resolve(), public_url=public_url.rstrip("/"), roles=roles, name=name, db=db,
                     host=host, port=port)
    path = cfg.save()

    async def _migrate(node):
        return None

    _run(_with_node(cfg.home, _migrate))
    console.print(f"Wrote {path}")
    console.print(f"Versions URL: {cfg.versions_url}")


def _identity(home: Path) -> str:
    try:
        cfg = NodeConfig.load(home)
    except Exception:
        return ""
    return " (" + ", ".join(f"{r.role.value} {r.country_code}/{r.party_id}" for r in cfg.roles) + ")"


@app.command()
def serve(
    home: Home,
    host: Annotated[Optional[str], typer.Option("--host", envvar="EVROAM_HOST", help="Address to bind (default from config).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", envvar="EVROAM_PORT", help="Port to bind (default from config; 0: any free port, logged in serve.started).")] = None,
    log_level: LogLevel = None,
    access_log: Annotated[Optional[bool], typer.Option("--access-log/--no-access-log", envvar="EVROAM_ACCESS_LOG", help="Log one line per HTTP request (default: access_log in evroam.toml, else off).")] = None,
    hooks: HooksOption = None,
) -> None:
    """Serve the node's OCPI endpoints over HTTP until SIGTERM or SIGINT.

    Logs are JSON lines on stderr. On SIGTERM or SIGINT open requests are
    drained, `serve.stopped` is logged and the exit status is 0."""
    from evroam.node import Node, bind_socket

    cfg = service_config(home, log_level, host=host, port=port, access_log=access_log)
    node = Node(cfg)
    install_hooks(node, hooks)
    # Bound before anything else starts, so a port in use is one clear line.
    try:
        sock = bind_socket(cfg.host, cfg.port)
    except OSError as exc:
        log.error("serve.bind_failed", host=cfg.host, port=cfg.port, error=exc.strerror or str(exc))
        raise typer.Exit(1) from None

    async def main() -> None:
        await node.serve_forever(sock, stop_on_signals())

    run_service(main(), "serve")


@partners_app.command("invite")
def partners_invite(
    home: Home,
    name: Annotated[str, typer.Option("--name", help="A name for the partner, used by the other partner commands.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"token\": TOKEN_A, \"versions_url\": URL}.")] = False,
    allow_raw_token: Annotated[bool, typer.Option("--allow-raw-token", help="Accept this partner's token without Base64 (pre-2.2.1 habit).")] = False,
) -> None:
    """Issue a registration token (token A) for a new partner and print our versions URL.

    Send both to the partner out of band; it registers with them."""
    async def go(node):
        return await node.handshake.invite(name, allow_raw_token=allow_raw_token)

    from evroam.modules.credentials.handshake import HandshakeError

    try:
        token, url = _run(_with_node(home, go))
    except HandshakeError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps({"token": token, "versions_url": url}) + "\n")
    else:
        console.print(f"Token A:      {token}")
        console.print(f"Versions URL: {url}")


@partners_app.command("register")
def partners_register(
    home: Home,
    versions_url: Annotated[str, typer.Option("--versions-url", help="The partner's versions URL.")],
    token: Annotated[str, typer.Option("--token", help="The token A the partner gave us.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Name for the partner (default: from its credentials).")] = None,
    raw_token: Annotated[bool, typer.Option("--raw-token", help="Send tokens without Base64 (partner on a pre-2.2.1 habit).")] = False,
) -> None:
    """Register with a partner that invited us (credentials handshake A → B → C).

    This node must be serving: the partner calls back our versions endpoints
    before it answers."""
    from evroam.modules.credentials.handshake import HandshakeError

    async def go(node):
        return await node.handshake.register(versions_url, token, name=name, raw_token=raw_token)

    try:
        party = _run(_with_node(home, go))
    except HandshakeError as exc:
        err.print(f"[red]registration failed ({exc.status_code}): {exc.message}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Registered with [bold]{party.name}[/bold] on OCPI {party.version}")


@partners_app.command("list")
def partners_list(
    home: Home,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List partners with their status, version, roles and endpoints.

    On a Hub, each role of a partner is a party with its ClientInfo status
    (CONNECTED, OFFLINE, PLANNED or SUSPENDED)."""
    from evroam.hub.directory import status_of
    from evroam.store import parties as repo

    async def go(node):
        async with node.engine.connect() as conn:
            return await repo.list_all(conn), any(r.role == Role.HUB for r in node.config.roles)

    rows, on_hub = _run(_with_node(home, go))
    if as_json:
        out = [{"name": p.name, "status": p.status, "version": p.version, "versions_url": p.versions_url,
                "roles": p.roles or [], "endpoints": p.endpoints or [], "initiated_by_us": p.initiated_by_us,
                "parties": _parties_of(p, status_of(p).value if on_hub else None)}
               for p in rows]
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    table = Table(title="Partners")
    for col in ("name", "status", "version", "roles", "endpoints"):
        table.add_column(col)
    for p in rows:
        suffix = f" {status_of(p).value}" if on_hub else ""
        roles = ", ".join(f"{r['role']} {r['country_code']}/{r['party_id']}{suffix}" for r in p.roles or [])
        eps = ", ".join(sorted({f"{e['identifier']}" for e in p.endpoints or []}))
        table.add_row(p.name, p.status, p.version or "", roles, eps)
    console.print(table)


def _parties_of(p, status: str | None) -> list[dict]:
    """One entry per role of a partner; on a Hub with its ClientInfo status."""
    out = []
    for r in p.roles or []:
        entry = {"country_code": r.get("country_code"), "party_id": r.get("party_id"), "role": r.get("role")}
        if status is not None:
            entry["status"] = status
        out.append(entry)
    return out


@partners_app.command("rotate")
def partners_rotate(home: Home, name: Annotated[str, typer.Argument(help="The partner's name.")]) -> None:
    """Rotate the tokens with a partner (credentials PUT); the old tokens stop working at once."""
    from evroam.modules.credentials.handshake import HandshakeError

    async def go(node):
        return await node.handshake.rotate(name)

    try:
        _run(_with_node(home, go))
    except HandshakeError as exc:
        err.print(f"[red]rotation failed ({exc.status_code}): {exc.message}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Rotated tokens with {name}")


@partners_app.command("remove")
def partners_remove(home: Home, name: Annotated[str, typer.Argument(help="The partner's name.")]) -> None:
    """Unregister a partner (credentials DELETE) and invalidate its tokens."""
    from evroam.modules.credentials.handshake import HandshakeError

    async def go(node):
        return await node.handshake.unregister(name)

    try:
        warning = _run(_with_node(home, go))
    except HandshakeError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    if warning:
        err.print(f"[yellow]{warning}[/yellow]")
    console.print(f"Removed {name}")


@calls_app.command("list")
def calls_list(
    home: Home,
    partner: Annotated[Optional[str], typer.Option("--partner", help="Only calls with this partner.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many of the newest calls.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the newest OCPI calls in and out."""
    from evroam.store import calllog
    from evroam.store import parties as repo

    async def go(node):
        party_id = None
        if partner:
            async with node.engine.connect() as conn:
                p = await repo.by_name(conn, partner)
            if p is None:
                return None
            party_id = p.id
        return await calllog.recent(node.engine, party_id, limit)

    rows = _run(_with_node(home, go))
    if rows is None:
        err.print(f"[red]no partner named {partner!r}[/red]")
        raise typer.Exit(1)
    print_calls(rows, as_json)


def print_calls(rows: list[dict], as_json: bool = False, title: str = "OCPI calls") -> None:
    if as_json:
        sys.stdout.write(json.dumps(rows, default=str, indent=2) + "\n")
        return
    table = Table(title=title)
    for col in ("at", "dir", "method", "url", "http", "ocpi", "ms"):
        table.add_column(col)
    for r in reversed(rows):
        table.add_row(r["at"].strftime("%H:%M:%S.%f")[:-3], r["direction"], r["method"], r["url"],
                      str(r["http_status"] or ""), str(r["ocpi_status"] or ""), f"{r['duration_ms']:.1f}")
    console.print(table)


@app.command()
def demo(
    cpo_port: Annotated[int, typer.Option("--cpo-port", help="The CPO node's port on 127.0.0.1 (default 0: any free port).")] = 0,
    emsp_port: Annotated[int, typer.Option("--emsp-port", help="The eMSP node's port on 127.0.0.1 (default 0: any free port).")] = 0,
) -> None:
    """Run the demo: a CPO and an eMSP node register with each other on loopback."""
    from evroam.demo.run import main

    raise typer.Exit(main(cpo_port, emsp_port))


# Command groups that live beside the code they drive.
from evroam.cli_cdrs import register as _register_cdrs  # noqa: E402
from evroam.cli_ops import register as _register_ops  # noqa: E402
from evroam.cli_price import register as _register_price  # noqa: E402

_register_price(app)
_register_cdrs(app)
_register_ops(app)
