"""What an operator does from outside a node, for integration tests: run
`evroam` commands and server processes, and call the admin API over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.nodes import wait_for
from tests.services import free_port, init_home

REPO = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "operator-admin-" + "z" * 20


def init_listening(home: Path, role: str, cc: str, pid: str, db: str | None = None) -> str:
    """`evroam init` a node on a free loopback port; returns its public URL."""
    port = free_port()
    init_home(home, *(["--db", db] if db else []), role=role, country=cc, party=pid, port=port)
    return f"http://127.0.0.1:{port}"


@asynccontextmanager
async def serving(home: Path, url: str, *args: str, env: dict | None = None,
                  cwd: Path = REPO) -> AsyncIterator[subprocess.Popen]:
    """`evroam serve --home HOME ARGS…` with the admin API on, until it answers
    at `url`; stopped (and waited for) on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "evroam", "serve", "--home", str(home), *args],
                            env={**os.environ, "EVROAM_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        async def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"evroam serve exited {proc.returncode}: {proc.stderr.read()}")
            try:
                async with aiohttp.ClientSession() as s, s.get(f"{url}/ocpi/versions") as r:
                    return r.status == 401
            except aiohttp.ClientError:
                return False

        await wait_for(up, timeout=30, what="evroam serve to answer")
        yield proc
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)


async def admin(base_url: str, method: str, path: str, body: object = None,
                token: str = ADMIN_TOKEN) -> tuple[int, dict]:
    """One admin API call: (HTTP status, envelope)."""
    async with aiohttp.ClientSession() as s, s.request(
            method, f"{base_url}/admin{path}", json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, json.loads(await r.text())
