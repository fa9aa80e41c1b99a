"""What an operator does from outside a node, for integration tests: run
`evroam` commands and server processes, and call the admin API over HTTP.
Also the small OCPI objects those tests publish."""

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

from tests.nodes import bind_loopback, wait_for

REPO = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "operator-admin-" + "z" * 20
T = "2026-01-01T00:00:00Z"


def evroam(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """One `evroam` command to completion (its exit code is the caller's to check)."""
    return subprocess.run([sys.executable, "-m", "evroam", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def init_home(home: Path, role: str, cc: str, pid: str, db: str | None = None) -> str:
    """`evroam init` a node on a free loopback port; returns its public URL."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}"
    done = evroam("init", "--home", str(home), "--country", cc, "--party", pid, "--role", role,
                  "--public-url", url, "--port", str(port), *(["--db", db] if db else []))
    assert done.returncode == 0, done.stderr
    return url


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


# --- objects ------------------------------------------------------------------------------------


def location(lid: str = "LOC1", cc: str = "NL", pid: str = "CPO", tariff_ids: list[str] | None = None) -> dict:
    connector = {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                 "max_voltage": 230, "max_amperage": 32, "last_updated": T}
    if tariff_ids:
        connector["tariff_ids"] = tariff_ids
    return {"country_code": cc, "party_id": pid, "id": lid, "publish": True, "address": "Main 1",
            "city": "Amsterdam", "country": "NLD", "coordinates": {"latitude": "52.37000", "longitude": "4.89000"},
            "time_zone": "Europe/Amsterdam", "last_updated": T,
            "evses": [{"uid": "E1", "evse_id": "NL*CPO*E1", "status": "AVAILABLE", "connectors": [connector],
                       "last_updated": T}]}


def token(uid: str = "APP-42", cc: str = "DE", pid: str = "EMS", **fields: object) -> dict:
    return {"country_code": cc, "party_id": pid, "uid": uid, "type": "APP_USER", "contract_id": f"{cc}-{pid}-C42",
            "issuer": "eMSP", "valid": True, "whitelist": "ALLOWED", "last_updated": T, **fields}


def tariff(tid: str = "T1", price: float = 0.25, updated: str = T, cc: str = "NL", pid: str = "CPO") -> dict:
    return {"country_code": cc, "party_id": pid, "id": tid, "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
            "last_updated": updated}
