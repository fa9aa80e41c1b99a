"""The demo: a CPO node and an eMSP node start on free loopback ports in
temporary homes; the CPO invites, the eMSP registers; each prints its view of
the partnership and the last calls it logged; then both stop."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from evroam.config import NodeConfig, RoleConfig
from evroam.node import Node, bind_socket
from evroam.ocpi.common import Role
from evroam.store import calllog
from evroam.store import parties as repo

console = Console()


def _config(home: Path, sock: socket.socket, role: Role, cc: str, pid: str, name: str) -> NodeConfig:
    port = sock.getsockname()[1]
    cfg = NodeConfig(home=home, public_url=f"http://127.0.0.1:{port}", name=name, port=port,
                     roles=[RoleConfig(role=role, country_code=cc, party_id=pid, name=name)])
    cfg.save()
    return cfg


async def _show(node: Node, title: str) -> None:
    await node.call_log.flush()
    async with node.engine.connect() as conn:
        partners = await repo.list_all(conn)
    for p in partners:
        table = Table(title=f"{title}: partner {p.name!r}", show_header=True)
        table.add_column("what")
        table.add_column("value")
        table.add_row("status", p.status)
        table.add_row("version", p.version or "")
        table.add_row("versions URL", p.versions_url or "")
        table.add_row("roles", "\n".join(f"{r['role']} {r['country_code']}/{r['party_id']} "
                                         f"({r['business_details']['name']})" for r in p.roles or []))
        table.add_row("endpoints", "\n".join(f"{e['identifier']} {e['role']} {e['url']}" for e in p.endpoints or []))
        console.print(table)
    calls = Table(title=f"{title}: last calls logged")
    for col in ("dir", "method", "url", "http", "ocpi", "ms"):
        calls.add_column(col)
    for r in reversed(await calllog.recent(node.engine, limit=10)):
        calls.add_row(r["direction"], r["method"], r["url"], str(r["http_status"] or ""),
                      str(r["ocpi_status"] or ""), f"{r['duration_ms']:.1f}")
    console.print(calls)


async def _demo(base: Path) -> int:
    cpo_sock, emsp_sock = bind_socket(), bind_socket()
    cpo = Node(_config(base / "cpo", cpo_sock, Role.CPO, "NL", "EVR", "evroam CPO demo"))
    emsp = Node(_config(base / "emsp", emsp_sock, Role.EMSP, "DE", "EVM", "evroam eMSP demo"))
    await cpo.serve_in_background(cpo_sock)
    await emsp.serve_in_background(emsp_sock)
    try:
        console.print(Panel.fit(f"CPO  serving {cpo.config.versions_url}\neMSP serving {emsp.config.versions_url}",
                                title="1. two nodes up"))
        token_a, versions_url = await cpo.handshake.invite("emsp-demo")
        console.print(Panel.fit(f"token A {token_a[:6]}… for {versions_url}", title="2. the CPO invites"))
        party = await emsp.handshake.register(versions_url, token_a)
        console.print(Panel.fit(f"registered with {party.name} on OCPI {party.version}",
                                title="3. the eMSP registers (A → B → C)"))
        await emsp.handshake.rotate(party.name)
        console.print(Panel.fit("credentials PUT: both tokens replaced", title="4. the eMSP rotates its tokens"))
        await _show(cpo, "CPO")
        await _show(emsp, "eMSP")
    finally:
        await emsp.stop()
        await cpo.stop()
    console.print("[green]demo complete[/green]")
    return 0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="evroam-demo-") as tmp:
        return asyncio.run(_demo(Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
