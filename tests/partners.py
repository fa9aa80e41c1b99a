"""Helpers for the partner life-cycle and leader-election tests: roles,
objects to push, what each side holds, and `evroam worker` processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from evroam.node import Node
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import format_datetime
from evroam.ocpi.tokens import Token
from evroam.store import objects
from evroam.store import parties as repo
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.store.tables import objects as objects_table
from evroam.store.tables import OURS, outbox, party_tokens, sync_state
from tests import builders

CPO = [("CPO", "NL", "CPO")]
EMSP = [("EMSP", "DE", "EMS")]


def tariff(tid: str, price: float = 0.25, updated: str = "2026-01-01T00:00:00Z") -> Tariff:
    return Tariff.from_wire(builders.tariff(tid, price=price, updated=updated))


async def parties_of(node: Node) -> list[Party]:
    async with node.engine.connect() as conn:
        return await repo.list_all(conn)


async def party_named(node: Node, name: str) -> Party | None:
    async with node.engine.connect() as conn:
        return await repo.by_name(conn, name)


async def outbox_rows(node: Node, party_id: int | None = None) -> list[tuple[str, int]]:
    """(status, party_id) of every outbox row, or of one partner's."""
    stmt = sa.select(outbox.c.status, outbox.c.party_id).order_by(outbox.c.id)
    if party_id is not None:
        stmt = stmt.where(outbox.c.party_id == party_id)
    async with node.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(stmt)).all()]


async def drained(node: Node) -> bool:
    """Nothing left in the outbox, pending or dead."""
    return not await outbox_rows(node)


async def received(node: Node, party_id: int, module: str, oid: str, cc: str = "NL", pid: str = "CPO") -> dict | None:
    """The document of one object as `node` holds it (party_id 0: one of its own)."""
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, party_id, cc, pid, oid))
    return json.loads(s.data) if s else None


async def received_ids(node: Node, module: str, owner: Party) -> list[str]:
    """Ids of the objects of `module` that `owner` sent to `node`."""
    stmt = (sa.select(objects_table.c.oid_key)
            .where(objects_table.c.module == module, objects_table.c.owner_id == owner.id)
            .order_by(objects_table.c.oid_key))
    async with node.engine.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


async def sync_modules(node: Node, party_id: int) -> list[str]:
    stmt = sa.select(sync_state.c.module).where(sync_state.c.party_id == party_id).order_by(sync_state.c.module)
    async with node.engine.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


async def token_kinds(node: Node) -> list[tuple[int, str]]:
    """(party_id, kind) of every token `node` issued."""
    stmt = sa.select(party_tokens.c.party_id, party_tokens.c.kind).order_by(party_tokens.c.party_id)
    async with node.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(stmt)).all()]


def token(uid: str = "0001") -> Token:
    return Token.from_wire({
        "country_code": "DE", "party_id": "EMS", "uid": uid, "type": "RFID", "contract_id": f"DE-EMS-C{uid}",
        "issuer": "eMSP", "valid": True, "whitelist": "ALLOWED", "last_updated": "2026-01-01T00:00:00Z",
    })


class WorkerProcess:
    """`evroam worker --home HOME` as a real process; its JSON log lines are
    read back from a file."""

    def __init__(self, home: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "evroam", "worker", "--home", str(home)],
                                     stdout=subprocess.DEVNULL, stderr=self._log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, event: str) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == event:
                    out.append(entry)
        return out

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self._log.close()


async def holds_for(predicate: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Assert that a condition stays true for a while (an absence: nothing
    happens that must not), checking it all along."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await predicate(), f"no longer true: {what}"
        await asyncio.sleep(0.05)


# --- a stream of Tariff changes, for delivery under faults and load ---------------------------------

BASE = datetime(2026, 3, 1, tzinfo=UTC)


def change(i: int, objects_n: int) -> Tariff:
    """Change number i: object i % n, a version stamped by i (strictly increasing)."""
    return Tariff.from_wire(builders.tariff(f"T{i % objects_n:03d}", price=i / 1000,
                                            updated=format_datetime(BASE + timedelta(seconds=i))))


async def latest_ours(engine, n: int) -> dict[str, str]:
    out = {}
    async with engine.connect() as conn:
        for k in range(n):
            s = await objects.get(conn, ObjectKey("tariffs", OURS, "NL", "CPO", f"T{k:03d}"))
            out[s and json.loads(s.data)["id"]] = s.data
    return out


async def holds_exactly(emsp: Node, party_id: int, latest: dict[str, str]) -> bool:
    async with emsp.engine.connect() as conn:
        for oid, doc in latest.items():
            s = await objects.get(conn, ObjectKey("tariffs", party_id, "NL", "CPO", oid))
            if s is None or s.data != doc:
                return False
    return True
