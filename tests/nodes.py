"""Real nodes on real HTTP on 127.0.0.1 for integration tests.

Each node binds its own socket on port 0, so tests never race for ports, and
its public URL is known before serving starts.
"""

from __future__ import annotations

import asyncio
import socket
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from evroam.config import NodeConfig, RoleConfig
from evroam.node import Node, bind_socket
from evroam.ocpi.common import Role

PG_ADMIN_DSN = os.environ.get("EVROAM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def bind_loopback() -> socket.socket:
    return bind_socket("127.0.0.1", 0)


async def wait_for(predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0,
                   what: str = "condition") -> None:
    """Wait on a condition with a deadline (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {type(exc).__name__}: {exc}"


class Databases:
    """Hands out a fresh database per node: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.created: list[str] = []

    async def new(self, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp_path / (name + '.db')}"
        import asyncpg

        dbname = f"evroam_t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            await conn.close()
        self.created.append(dbname)
        base = PG_ADMIN_DSN.rsplit("/", 1)[0]
        return f"postgresql+asyncpg://{base.split('://', 1)[1]}/{dbname}"

    async def drop_all(self) -> None:
        if not self.created:
            return
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            for db in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()


class Cluster:
    def __init__(self, dbs: Databases, tmp_path: Path) -> None:
        self.dbs = dbs
        self.tmp_path = tmp_path
        self.nodes: list[Node] = []

    async def node(self, name: str, roles: list[tuple[str, str, str]], *, serve: bool = True,
                   **settings: object) -> Node:
        sock = bind_loopback()
        port = sock.getsockname()[1]
        cfg = NodeConfig(
            home=self.tmp_path / name,
            public_url=f"http://127.0.0.1:{port}",
            roles=[RoleConfig(role=Role(r), country_code=cc, party_id=pid, name=f"{name} {r}") for r, cc, pid in roles],
            name=name,
            db=await self.dbs.new(name),
            port=port,
        )
        for k, v in settings.items():
            setattr(cfg, k, v)
        cfg.home.mkdir(parents=True, exist_ok=True)
        node = Node(cfg)
        self.nodes.append(node)
        if serve:
            await node.serve_in_background(sock)
        else:
            sock.close()
            await node.start()
        return node

    async def restart(self, node: Node, before_serve: Callable[[Node], None] | None = None) -> Node:
        """Stop a node and start a fresh process-equivalent on the same home,
        database and port (its partners know it by that URL)."""
        await node.stop()
        self.nodes.remove(node)
        fresh = Node(node.config)
        self.nodes.append(fresh)
        if before_serve is not None:
            before_serve(fresh)
        await fresh.serve_in_background(bind_socket("127.0.0.1", node.config.port))
        return fresh

    async def close(self) -> None:
        for node in reversed(self.nodes):
            await node.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def cluster(request, tmp_path):
    if request.param == "postgresql":
        reason = await pg_available()
        if reason:
            pytest.skip(reason)
    dbs = Databases(request.param, tmp_path)
    c = Cluster(dbs, tmp_path)
    try:
        yield c
    finally:
        await c.close()
        await dbs.drop_all()
