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
from pathlib import Path

import sqlalchemy as sa

from evroam.node import Node
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.tokens import Token
from evroam.store import parties as repo
from evroam.store.parties import Party
from evroam.store.tables import objects, outbox, party_tokens, sync_state

CPO = [("CPO", "NL", "CPO")]
EMSP = [("EMSP", "DE", "EMS")]


def tariff(tid: str, price: float = 0.25, updated: str = "2026-01-01T00:00:00Z") -> Tariff:
    return Tariff.from_wire({
        "country_code": "NL", "party_id": "CPO", "id": tid, "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
        "last_updated": updated,
    })


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


async def received_ids(node: Node, module: str, owner: Party) -> list[str]:
    """Ids of the objects of `module` that `owner` sent to `node`."""
    stmt = (sa.select(objects.c.oid_key).where(objects.c.module == module, objects.c.owner_id == owner.id)
            .order_by(objects.c.oid_key))
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
