"""Push delivery benchmark (issue 9, section B).

`count` new Locations are queued for one registered partner whose Locations
RECEIVER endpoint is a bare Starlette sink (uvicorn, uvloop, httptools, in its
own process) answering each PUT at once with an OCPI success envelope. Then,
in the same run and against the same sink:

1. evroam: `workers` real `evroam worker` processes deliver until the outbox
   is empty, timed from the sink's first PUT to the moment the outbox is seen
   empty (so process start-up is not counted, every completion is);
2. the baseline: a plain aiohttp client with 32 connections sending the same
   PUTs (the stored documents, the same headers) to the same sink.

    .venv/bin/python bench/delivery.py [--count 10000] [--backend sqlite|postgresql|both] [--repeat 1]

PostgreSQL is at $EVROAM_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/test);
each run gets a fresh database, dropped afterwards. `measure_push()` is the
entry point for bench/http.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/http.py
# would shadow the standard library's `http` (urllib and aiohttp need it).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

import argparse
import asyncio
import base64
import json
import os
import subprocess
import tempfile
import textwrap
import time
import urllib.request
import uuid

import aiohttp
import sqlalchemy as sa

from evroam.config import NodeConfig, RoleConfig
from evroam.node import Node
from evroam.ocpi.common import Role
from evroam.ocpi.locations import Location
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.store import parties as party_repo
from evroam.store.tables import objects, outbox
from evroam.sync.publish import publish_many

sys.path.insert(0, str(Path(__file__).parent))
from sync import free_port, location

PY = sys.executable
PG_ADMIN_DSN = os.environ.get("EVROAM_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
BASELINE_CONNECTIONS = 32
PARTNER_TOKEN = "bench-token-c"

SINK = textwrap.dedent("""
    import sys, time
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    OK = (b'{"data":null,"status_code":1000,"status_message":"Success",'
          b'"timestamp":"2026-01-01T00:00:00Z"}')
    NOT_FOUND = (b'{"data":null,"status_code":2003,"status_message":"Unknown object",'
                 b'"timestamp":"2026-01-01T00:00:00Z"}')
    stats = {"PUT": 0, "GET": 0, "PATCH": 0, "first": None, "last": None}

    async def location(request):
        await request.body()
        now = time.time()
        stats[request.method] = stats.get(request.method, 0) + 1
        if stats["first"] is None:
            stats["first"] = now
        stats["last"] = now
        if request.method == "GET":  # an unsure delivery's check: we hold nothing
            return Response(NOT_FOUND, 404, media_type="application/json")
        return Response(OK, media_type="application/json")

    async def get_stats(request):
        return JSONResponse(stats)

    async def reset(request):
        stats.update({"PUT": 0, "GET": 0, "PATCH": 0, "first": None, "last": None})
        return JSONResponse(stats)

    app = Starlette(routes=[
        Route("/ocpi/2.2.1/locations/{path:path}", location, methods=["GET", "PUT", "PATCH"]),
        Route("/stats", get_stats), Route("/reset", reset, methods=["POST"]),
    ])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)
""")


def http_json(url: str, method: str = "GET", deadline_s: float = 30) -> dict:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


# --- databases --------------------------------------------------------------------------------


async def new_database(backend: str, base: Path) -> tuple[str, str | None]:
    """(url, PostgreSQL database name to drop afterwards)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{base / 'evroam.db'}", None
    import asyncpg

    name = f"evroam_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG_ADMIN_DSN.split('://', 1)[1].rsplit('/', 1)[0]}/{name}", name


async def drop_database(name: str | None) -> None:
    if name is None:
        return
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- the set-up: one partner, `count` queued Locations ----------------------------------------


def make_home(base: Path, db_url: str) -> NodeConfig:
    port = free_port()
    cfg = NodeConfig(home=base / "cpo", public_url=f"http://127.0.0.1:{port}", name="cpo", port=port, db=db_url,
                     roles=[RoleConfig(role=Role.CPO, country_code="NL", party_id="EVR", name="cpo")])
    cfg.run_workers = True
    cfg.log_level = "warning"
    cfg.pull_initial_delay_s = 3600.0  # no scheduled pull during the run
    cfg.save()
    return cfg


async def seed(cfg: NodeConfig, sink_url: str, count: int) -> None:
    node = Node(cfg)
    await node.start()  # migrates
    try:
        async with node.engine.begin() as conn:
            pid = await party_repo.create(conn, name="sink", status=party_repo.REGISTERED, initiated_by_us=True,
                                          versions_url=f"{sink_url}/ocpi/versions")
            await party_repo.update(
                conn, pid, version="2.2.1", token_out=PARTNER_TOKEN,
                endpoints=[{"identifier": "locations", "role": "RECEIVER", "url": f"{sink_url}/ocpi/2.2.1/locations"}],
                roles=[{"role": "EMSP", "country_code": "DE", "party_id": "SNK",
                        "business_details": {"name": "sink"}}])
        for i in range(0, count, 1000):
            async with node.engine.begin() as conn:
                await publish_many(conn, LOCATIONS, [Location.from_wire(location(k))
                                                     for k in range(i, min(count, i + 1000))])
    finally:
        await node.stop()


async def pending(engine: sa.ext.asyncio.AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(outbox)
                                   .where(outbox.c.status == "PENDING"))).scalar_one()


# --- the two measurements ---------------------------------------------------------------------


async def time_workers(cfg: NodeConfig, sink: str, workers: int, count: int, engine: sa.ext.asyncio.AsyncEngine,
                       timeout_s: float = 600.0) -> dict:
    http_json(f"{sink}/reset", "POST")
    procs = [subprocess.Popen([PY, "-m", "evroam", "worker", "--home", str(cfg.home)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(workers)]
    try:
        end = time.monotonic() + timeout_s
        while await pending(engine):
            if time.monotonic() > end or any(p.poll() is not None for p in procs):
                raise RuntimeError("the workers did not empty the outbox: "
                                   + "; ".join((p.stderr.read(2000) if p.poll() is not None else b"").decode()
                                               for p in procs))
            await asyncio.sleep(0.01)
        done = time.time()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    stats = http_json(f"{sink}/stats")
    elapsed = done - stats["first"]
    return {"per_s": count / elapsed, "seconds": elapsed, "puts": stats["PUT"], "gets": stats["GET"]}


async def time_aiohttp(sink: str, engine: sa.ext.asyncio.AsyncEngine) -> dict:
    async with engine.connect() as conn:
        docs = list((await conn.execute(sa.select(objects.c.data).order_by(objects.c.id))).scalars())
    auth = "Token " + base64.b64encode(PARTNER_TOKEN.encode()).decode()
    requests = []
    for data in docs:
        doc = json.loads(data)
        requests.append((f"{sink}/ocpi/2.2.1/locations/{doc['country_code']}/{doc['party_id']}/{doc['id']}",
                         data.encode()))
    http_json(f"{sink}/reset", "POST")
    todo = iter(requests)

    async def sender(session: aiohttp.ClientSession) -> None:
        for url, body in todo:
            headers = {"Authorization": auth, "X-Request-ID": str(uuid.uuid4()),
                       "X-Correlation-ID": str(uuid.uuid4()), "Accept": "application/json",
                       "Content-Type": "application/json", "OCPI-from-country-code": "NL",
                       "OCPI-from-party-id": "EVR", "OCPI-to-country-code": "DE", "OCPI-to-party-id": "SNK"}
            async with session.put(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"sink answered {resp.status}")

    connector = aiohttp.TCPConnector(limit=BASELINE_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(BASELINE_CONNECTIONS)))
        elapsed = time.perf_counter() - started
    return {"per_s": len(requests) / elapsed, "seconds": elapsed}


async def measure_push_async(backend: str, workers: int, count: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="evroam-bench-delivery-") as tmp:
        port = free_port()
        sink_url = f"http://127.0.0.1:{port}"
        sink = subprocess.Popen([PY, "-c", SINK, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        db_url, pg_name = await new_database(backend, Path(tmp))
        try:
            http_json(f"{sink_url}/stats")
            cfg = make_home(Path(tmp), db_url)
            await seed(cfg, sink_url, count)
            engine = Node(cfg).engine
            try:
                ours = await time_workers(cfg, sink_url, workers, count, engine)
                base = await time_aiohttp(sink_url, engine)
            finally:
                await engine.dispose()
        finally:
            sink.terminate()
            sink.wait(timeout=30)
            await drop_database(pg_name)
    return {"backend": backend, "workers": workers, "count": count,
            "evroam_per_s": ours["per_s"], "aiohttp_per_s": base["per_s"],
            "ratio": ours["per_s"] / base["per_s"], "sink_puts": ours["puts"], "sink_gets": ours["gets"]}


def measure_push(backend: str, workers: int, count: int) -> dict:
    """Deliveries/s of `workers` evroam worker processes pushing `count` new
    Locations, and of a plain aiohttp client (32 connections) sending the
    same PUTs to the same sink, in one run. Keys: evroam_per_s, aiohttp_per_s,
    ratio, sink_puts (PUTs the sink saw from evroam: == count when none was
    sent twice), sink_gets (unsure checks)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(measure_push_async(backend, workers, count))
    # The worker runs on uvloop (cli_common.run): so does the baseline.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(measure_push_async(backend, workers, count))


def _line(r: dict) -> str:
    return (f"{r['backend']:<10} workers={r['workers']}  evroam {r['evroam_per_s']:8.0f}/s  "
            f"aiohttp(32) {r['aiohttp_per_s']:8.0f}/s  ratio {r['ratio']:.3f}  "
            f"(sink saw {r['sink_puts']} PUTs, {r['sink_gets']} GETs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})", flush=True)
    for _ in range(args.repeat):
        if args.backend in ("sqlite", "both"):
            print(_line(measure_push("sqlite", 1, args.count)), flush=True)
        if args.backend in ("postgresql", "both"):
            one = measure_push("postgresql", 1, args.count)
            print(_line(one), flush=True)
            two = measure_push("postgresql", 2, args.count)
            print(_line(two), flush=True)
            print(f"postgresql two workers / one: {two['evroam_per_s'] / one['evroam_per_s']:.2f}x  "
                  f"(normalised by each run's baseline: "
                  f"{two['ratio'] / one['ratio']:.2f}x)", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
