"""Sync benchmark (issue 4).

Prints, with ratios against baselines measured in the same run (these
machines are noisy, so absolute figures mean little on their own):
1. full sync of N locations (4 EVSEs each) from a CPO node to an eMSP node,
   paginated, on SQLite; ratio to decoding + encoding the same objects in
   one process;
2. receiver PUT and PATCH throughput (requests/s) against a bare Starlette
   endpoint served the same way;
3. the peak RSS of both nodes during the sync.

Each node is its own process (`evroam serve`, and a puller process), so their
memory is measured separately.

    .venv/bin/python bench/sync.py [--locations 10000] [--requests 3000] [--receiver-only]

`--receiver-only` skips the load and the full sync and prints only part 2
(the eMSP then starts with no stored locations).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/http.py
# would shadow the standard library's `http` (urllib and aiohttp need it):
# the folder goes last, so the standard library wins.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

import argparse
import asyncio
import json
import subprocess
import tempfile
import textwrap
import time

import aiohttp
from samples import location as sample_location

from evroam.config import NodeConfig, RoleConfig
from evroam.node import Node, bind_socket
from evroam.ocpi.common import Role
from evroam.ocpi.headers import encode_token
from evroam.ocpi.locations import Location
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.sync.publish import publish

PY = sys.executable


def location(i: int) -> dict:
    return sample_location(i, evses=4)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_http(url: str, deadline_s: float = 30) -> None:
    import urllib.error
    import urllib.request

    end = time.monotonic() + deadline_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def free_port() -> int:
    s = bind_socket("127.0.0.1", 0)
    port = s.getsockname()[1]
    s.close()
    return port


def make_home(base: Path, name: str, role: Role, cc: str, pid: str, **settings: object) -> NodeConfig:
    port = free_port()
    cfg = NodeConfig(home=base / name, public_url=f"http://127.0.0.1:{port}", name=name, port=port,
                     roles=[RoleConfig(role=role, country_code=cc, party_id=pid, name=name)])
    for k, v in settings.items():
        setattr(cfg, k, v)
    cfg.save()
    return cfg


def serve(cfg: NodeConfig) -> subprocess.Popen:
    p = subprocess.Popen([PY, "-m", "evroam", "serve", "--home", str(cfg.home)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(cfg.versions_url)
    return p


async def load_locations(cfg: NodeConfig, docs: list[dict]) -> None:
    node = Node(cfg)
    await node.start()
    try:
        for i in range(0, len(docs), 1000):
            async with node.engine.begin() as conn:
                for d in docs[i:i + 1000]:
                    await publish(conn, LOCATIONS, Location.from_wire(d))
    finally:
        await node.stop()


async def register(emsp_cfg: NodeConfig, cpo_cfg: NodeConfig) -> str:
    cpo = Node(cpo_cfg)
    await cpo.start()
    token_a, versions_url = await cpo.handshake.invite("emsp")
    await cpo.stop()
    emsp = Node(emsp_cfg)
    await emsp.start()
    party = await emsp.handshake.register(versions_url, token_a)
    await emsp.stop()
    return party.name


PULLER = textwrap.dedent("""
    import asyncio, json, resource, sys, time
    from pathlib import Path
    from evroam.config import NodeConfig
    from evroam.node import Node
    async def main():
        node = Node(NodeConfig.load(Path(sys.argv[1])))
        await node.start()
        t = time.perf_counter()
        r = await node.pull(sys.argv[2], "locations", full=True)
        elapsed = time.perf_counter() - t
        await node.stop()
        print(json.dumps({"elapsed": elapsed, "stored": r.stored, "error": r.error,
                          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    asyncio.run(main())
""")

BARE = textwrap.dedent("""
    import sys, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    BODY = b'{"status_code":1000,"timestamp":"2026-01-01T00:00:00Z"}'
    async def ok(request):
        await request.body()
        return Response(BODY, media_type="application/json")
    app = Starlette(routes=[Route("/{path:path}", ok, methods=["PUT", "PATCH"])])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
""")


async def hammer(urls_bodies: list[tuple[str, str, bytes]], token: str, concurrency: int = 32) -> float:
    headers = {"Authorization": encode_token(token), "Content-Type": "application/json"}
    queue = list(reversed(urls_bodies))
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while queue:
            method, url, body = queue.pop()
            async with session.request(method, url, data=body, headers=headers) as r:
                payload = await r.read()
                if r.status >= 300 or b'"status_code":1000' not in payload:
                    errors += 1
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        t = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t
    if errors:
        raise SystemExit(f"{errors} requests failed")
    return len(urls_bodies) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--locations", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=3_000)
    ap.add_argument("--receiver-only", action="store_true", help="only the receiver PUT/PATCH throughput")
    args = ap.parse_args()
    docs = [location(i) for i in range(args.locations)]
    raw = [json.dumps(d).encode() for d in docs]

    # Baseline 1: decode and encode the same objects in one process.
    t = time.perf_counter()
    for b in ([] if args.receiver_only else raw):
        Location.from_wire(b).to_json_bytes()
    codec_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory(prefix="evroam-bench-") as tmp:
        base = Path(tmp)
        cpo_cfg = make_home(base, "cpo", Role.CPO, "NL", "EVR", run_workers=False)
        emsp_cfg = make_home(base, "emsp", Role.EMSP, "DE", "EVM", run_workers=False)
        t = time.perf_counter()
        if not args.receiver_only:
            asyncio.run(load_locations(cpo_cfg, docs))
        load_s = time.perf_counter() - t
        cpo_p, emsp_p = serve(cpo_cfg), serve(emsp_cfg)
        try:
            partner = asyncio.run(register(emsp_cfg, cpo_cfg))
            if not args.receiver_only:
                out = subprocess.run([PY, "-c", PULLER, str(emsp_cfg.home), partner], capture_output=True,
                                     text=True, check=True)
                pull = json.loads(out.stdout.strip().splitlines()[-1])
                assert pull["stored"] == args.locations and pull["error"] is None, pull
                cpo_rss = peak_rss_mb(cpo_p.pid)

            # Receiver throughput: the CPO's token at the eMSP is what a push uses.
            async def receiver_rps() -> tuple[float, float, str]:
                node = Node(NodeConfig.load(cpo_cfg.home))
                await node.start()
                p = await node.party("emsp")
                await node.stop()
                recv = p.endpoint_url("locations", "RECEIVER")
                n = args.requests
                puts = [("PUT", f"{recv}/NL/EVR/PUT{i:06d}", json.dumps({**docs[i % len(docs)], "id": f"PUT{i:06d}"}).encode())
                        for i in range(n)]
                put_rps = await hammer(puts, p.token_out)
                patches = [("PATCH", f"{recv}/NL/EVR/PUT{i % n:06d}/EVSE-{i % n % len(docs)}-0",
                            json.dumps({"status": "CHARGING" if i % 2 else "AVAILABLE",
                                        "last_updated": f"2026-02-01T00:00:{i % 60:02d}Z"}).encode())
                           for i in range(n)]
                patch_rps = await hammer(patches, p.token_out)
                return put_rps, patch_rps, p.token_out

            put_rps, patch_rps, token = asyncio.run(receiver_rps())
            emsp_rss = peak_rss_mb(emsp_p.pid)
        finally:
            for p in (cpo_p, emsp_p):
                p.terminate()
                p.wait(timeout=20)

        bare_port = free_port()
        bare = subprocess.Popen([PY, "-c", BARE, str(bare_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{bare_port}/x")
            bare_items = [("PUT", f"http://127.0.0.1:{bare_port}/x/{i}", raw[i % len(raw)]) for i in range(args.requests)]
            bare_rps = asyncio.run(hammer(bare_items, token))
        finally:
            bare.terminate()
            bare.wait(timeout=20)

    if args.receiver_only:
        print("receiver only (no load, no full sync), SQLite")
    else:
        print(f"locations: {args.locations} (4 EVSEs each), page limit {cpo_cfg.page_limit}, SQLite")
        print(f"  load into CPO (one process, batched)   {load_s:8.2f} s")
        print(f"  baseline: decode+encode in one process {codec_s:8.2f} s")
        print(f"  full sync CPO -> eMSP over HTTP        {pull['elapsed']:8.2f} s   ratio to baseline {pull['elapsed'] / codec_s:5.2f}x")
        print(f"  peak RSS: CPO node {cpo_rss:.0f} MB, eMSP node (puller) {pull['rss_mb']:.0f} MB, "
              f"eMSP server {emsp_rss:.0f} MB")
    print(f"receiver throughput ({args.requests} requests, 32 concurrent)")
    print(f"  bare Starlette endpoint                {bare_rps:8.0f} req/s")
    print(f"  Location PUT                           {put_rps:8.0f} req/s   ratio {put_rps / bare_rps:5.2f}")
    print(f"  EVSE PATCH                             {patch_rps:8.0f} req/s   ratio {patch_rps / bare_rps:5.2f}")


if __name__ == "__main__":
    main()
