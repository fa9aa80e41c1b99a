"""Quick check of the Sender hot path (issue 9 B): GET one Location and a
page of 50, with 1,000 and 100,000 Locations stored, each interleaved with a
bare Starlette baseline (uvicorn, uvloop, httptools) serving a fixed body of
the same size. Not a test; bench/http.py is the full benchmark.

    .venv/bin/python bench/hot_smoke.py [--backend sqlite|postgresql] [--counts 1000,100000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

from evroam.config import NodeConfig, RoleConfig
from evroam.node import Node
from evroam.ocpi.common import Role
from evroam.ocpi.headers import encode_token
from evroam.ocpi.locations import Location
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.store import objects, parties
from evroam.store.objects import object_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync import free_port, wait_http
from sync import location as sync_location

PY = sys.executable
WRK = "/usr/bin/wrk"
TOKEN = "hot-smoke-token-0123456789abcdef"
PG = os.environ.get("EVROAM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

BARE = textwrap.dedent("""
    import sys, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    BODY = b"x" * int(sys.argv[2])
    async def ok(request):
        return Response(BODY, media_type="application/json")
    app = Starlette(routes=[Route("/{path:path}", ok)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
                loop="uvloop", http="httptools")
""")


def location(i: int) -> dict:
    """bench/sync.py's Location with 2 EVSEs, as the issue measured."""
    doc = sync_location(i)
    doc["evses"] = doc["evses"][:2]
    return doc


async def new_pg_db(name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"


async def build(cfg: NodeConfig, count: int) -> None:
    node = Node(cfg)
    await node.start()
    try:
        async with node.engine.begin() as conn:
            pid = await parties.create(conn, name="partner", status=parties.REGISTERED, initiated_by_us=False)
            await parties.update(conn, pid, version="2.2.1", roles=[
                {"role": "EMSP", "country_code": "NL", "party_id": "MSP", "business_details": {"name": "m"}}])
            await parties.add_token(conn, pid, TOKEN, parties.TOKEN_ACTIVE)
        for start in range(0, count, 2000):
            rows = []
            for i in range(start, min(count, start + 2000)):
                obj = Location.from_wire(location(i))
                rows.append((object_key(LOCATIONS, obj), obj.to_json_bytes().decode(), obj.last_updated, None))
            async with node.engine.begin() as conn:
                await objects.upsert_many(conn, rows)
    finally:
        await node.stop()


def wrk(url: str, seconds: int, auth: bool = True) -> tuple[float, str]:
    cmd = [WRK, "-t1", "-c32", f"-d{seconds}s", "--latency"]
    if auth:
        cmd += ["-H", f"Authorization: {encode_token(TOKEN)}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} failed responses")
    return rate, p99.group(1) if p99 else "?"


def body_size(url: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": encode_token(TOKEN)})
    with urllib.request.urlopen(req) as r:
        return len(r.read())


def rounds_of(urls: dict[str, str], seconds: int, rounds: int) -> dict[str, tuple[float, float, str]]:
    """Each URL's best rate and its baseline's, measured in turns (the baseline,
    then each URL, then again), so a change in the machine's load hits all alike."""
    bares, best = {}, {name: [0.0, 0.0, ""] for name in urls}
    try:
        for name, url in urls.items():
            port = free_port()
            bares[name] = (port, subprocess.Popen([PY, "-c", BARE, str(port), str(body_size(url))]))
            wait_http(f"http://127.0.0.1:{port}/")
        for _ in range(rounds):
            for name, url in urls.items():
                base = wrk(f"http://127.0.0.1:{bares[name][0]}/x", seconds, auth=False)[0]
                rate, p99 = wrk(url, seconds)
                row = best[name]
                row[1] = max(row[1], base)
                if rate > row[0]:
                    row[0], row[2] = rate, p99
    finally:
        for _, bare in bares.values():
            bare.terminate()
            bare.wait()
    return {name: tuple(row) for name, row in best.items()}


def prepare(args: argparse.Namespace, count: int) -> NodeConfig:
    home = Path(args.cache) / f"{args.backend}-{count}"
    port = free_port()
    db = None
    if args.backend == "postgresql":
        db = f"postgresql+asyncpg://{PG.split('://', 1)[1].rsplit('/', 1)[0]}/evroam_hot_{count}"
    cfg = NodeConfig(home=home, public_url=f"http://127.0.0.1:{port}", name="cpo", port=port, db=db,
                     run_workers=False, log_level="warning",
                     roles=[RoleConfig(role=Role.CPO, country_code="NL", party_id="EVR", name="cpo")])
    if not (home / "built").exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        if db:
            asyncio.run(new_pg_db(f"evroam_hot_{count}"))
        t = time.perf_counter()
        asyncio.run(build(cfg, count))
        print(f"built {count} in {time.perf_counter() - t:.0f}s", flush=True)
        (home / "built").touch()
    cfg.save()
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    ap.add_argument("--counts", default="1000,100000")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--page", action="store_true", help="also GET a page of 50")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "evroam-hot-smoke"))
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    configs = {count: prepare(args, count) for count in counts}
    servers = [subprocess.Popen([PY, "-m", "evroam", "serve", "--home", str(cfg.home)]) for cfg in configs.values()]
    try:
        urls = {}
        for count, cfg in configs.items():
            wait_http(cfg.versions_url)
            urls[f"{count:>6} GET one"] = f"{cfg.public_url}/ocpi/2.2.1/sender/locations/LOC{count // 2:06d}"
            if args.page:
                urls[f"{count:>6} page 50"] = f"{cfg.public_url}/ocpi/2.2.1/sender/locations?offset=100&limit=50"
        results = rounds_of(urls, args.seconds, args.rounds)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    for name, (ours, base, p99) in results.items():
        print(f"{args.backend} {name}: {ours:8.0f} req/s (p99 {p99}), baseline {base:8.0f}, ratio {ours / base:.3f}")
    if len(counts) == 2:
        small, large = sorted(counts)
        ratio = results[f"{large:>6} GET one"][0] / results[f"{small:>6} GET one"][0]
        print(f"{args.backend} GET one {large} vs {small}: {ratio:.3f}")
    print(json.dumps({"load": os.getloadavg()}))


if __name__ == "__main__":
    main()
