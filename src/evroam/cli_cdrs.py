"""`evroam cdrs`: the CDRs partners sent us, with the verdict of the pricing check.

Wired into the main CLI by `register(app)`.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any, Optional

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.table import Table

from evroam.cli_common import Home, console, err, run
from evroam.store.tables import OURS, objects, parties



class Verdict(StrEnum):
    accepted = "accepted"
    disputed = "disputed"


async def received_cdrs(engine: Any, status: str | None = None, limit: int | None = None) -> tuple[list[dict], int]:
    """Received CDRs, newest first, as rows for display, and how many match."""
    conds = [objects.c.module == "cdrs", objects.c.owner_id != OURS]
    if status is not None:
        conds.append(objects.c.status == status.upper())
    async with engine.connect() as conn:
        total = (await conn.execute(sa.select(sa.func.count()).select_from(objects).where(*conds))).scalar_one()
        stmt = (sa.select(objects.c.data, objects.c.status, objects.c.note, parties.c.name)
                .select_from(objects.outerjoin(parties, parties.c.id == objects.c.owner_id))
                .where(*conds).order_by(objects.c.id.desc()))
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = (await conn.execute(stmt)).all()
    out = []
    for data, verdict, note, partner in rows:
        cdr = json.loads(data)
        out.append({
            "partner": partner, "country_code": cdr["country_code"], "party_id": cdr["party_id"], "id": cdr["id"],
            "start_date_time": cdr["start_date_time"], "end_date_time": cdr["end_date_time"],
            "total_energy": cdr["total_energy"], "total_cost": cdr["total_cost"], "currency": cdr["currency"],
            "credit": bool(cdr.get("credit")), "status": verdict, "reason": note,
        })
    return out, total


def _money(price: dict[str, Any], currency: str) -> str:
    incl = price.get("incl_vat")
    return f"{price['excl_vat']} {currency}" + (f" ({incl} incl. VAT)" if incl is not None else "")


def register(app: typer.Typer) -> None:
    cdrs_app = typer.Typer(help="CDRs partners sent us, and whether their prices check out.",
                           no_args_is_help=True)
    app.add_typer(cdrs_app, name="cdrs")

    @cdrs_app.command("list")
    def cdrs_list(
        home: Home,
        status: Annotated[Optional[Verdict], typer.Option("--status", case_sensitive=False, help="Only ACCEPTED or only DISPUTED CDRs.")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest CDRs.")] = 100,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """List received CDRs with the pricing check's verdict (ACCEPTED or DISPUTED) and its reason."""
        from evroam.config import NodeConfig
        from evroam.node import Node

        try:
            config = NodeConfig.load(home)
        except FileNotFoundError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None

        async def go() -> tuple[list[dict], int]:
            node = Node(config)
            await node.start()
            try:
                return await received_cdrs(node.engine, status.value if status else None, limit)
            finally:
                await node.stop()

        rows, total = run(go())
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        title = "Received CDRs" + (f" ({status.value})" if status else "")
        if total > len(rows):
            title += f": newest {len(rows)} of {total}"
        table = Table(title=title)
        for col in ("partner", "CDR", "start", "end", "kWh", "total", "status", "reason"):
            table.add_column(col, overflow="fold")
        for r in rows:
            verdict = r["status"] or ""
            style = {"ACCEPTED": "green", "DISPUTED": "red"}.get(verdict, "")
            # Partner data may hold "[...]", which rich would read as markup.
            table.add_row(escape(r["partner"] or ""), escape(f"{r['country_code']}/{r['party_id']}/{r['id']}")
                          + (" (credit)" if r["credit"] else ""), r["start_date_time"], r["end_date_time"],
                          str(r["total_energy"]), escape(_money(r["total_cost"], r["currency"])),
                          f"[{style}]{verdict}[/{style}]" if style else escape(verdict), escape(r["reason"] or ""))
        console.print(table)
