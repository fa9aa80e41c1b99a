"""Hub benchmark (OCPI issue 10, point 8). Not a test.

(a) Forwarding: GET one Location and PUT Session, direct (eMSP → CPO, CPO →
    eMSP) against the same through the Hub (with OCPI-to headers), interleaved
    in one run (direct, hub, direct, …) because the machine is noisy: the
    throughput ratio through-hub/direct (wrk -t1 -c32, target >= 0.5) and the
    added p50 latency (wrk -c1, target <= 2 ms). Every node is a real
    `evroam serve` process on SQLite.
(b) Live status fan-out: one CPO PATCHes EVSE statuses at 170/s to the Hub
    (broadcast, TO = the Hub), which delivers each to 20 eMSPs: lightweight
    sinks in one aiohttp process, registered with the Hub by the credentials
    handshake. Deliveries/s sustained (target >= 3,400/s) and the lag from the
    PATCH answered by the Hub to the sink's receipt (p99 target < 5 s). First
    one Hub on SQLite, then two Hub processes on one PostgreSQL database, the
    PATCHes spread over both.

    .venv/bin/python bench/hub.py [--quick] [--part a|b] [--pg-url URL] [--profile]

--quick: 2 s runs in (a), 10 s of load in (b). --profile: the Hub (of (a),
and the SQLite Hub of (b), PostgreSQL then skipped) runs under cProfile and
the top of its profile is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# bench/http.py would shadow the standard library's `http`: this folder goes last.
sys.path[:] = [str(HERE.parent / "src")] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import pstats
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import tomli_w


def _bench_http():
    spec = importlib.util.spec_from_file_location("bench_http", HERE / "http.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_http"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bh = _bench_http()  # its process, node and wrk helpers
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

from evroam.ocpi.headers import encode_token

PY = sys.executable
V = "2.2.1"
STORED = 1_000
SINKS = 20
FANOUT_LOCATIONS = 2_000
RATE = 170.0
# The PATCH number n carries last_updated = EPOCH + n s: its receipt names it.
EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z, after the Locations' own last_updated



def session_doc(sid: str) -> dict:
    return {"country_code": "NL", "party_id": "EVR", "id": sid, "start_date_time": "2026-01-01T00:00:00Z",
            "kwh": 0, "cdr_token": {"country_code": "DE", "party_id": "EVM", "uid": "TOK1", "type": "APP_USER",
                                    "contract_id": "DE-EVM-C1"},
            "auth_method": "COMMAND", "location_id": "LOC000001", "evse_uid": "EVSE-1-0", "connector_id": "1",
            "currency": "EUR", "status": "ACTIVE", "last_updated": "2026-01-01T00:00:00Z"}


# --- nodes ---------------------------------------------------------------------------------------


def make_node(base: Path, name: str, role: str, cc: str, pid: str, db_url: str | None = None,
              **settings: object) -> bh.Node:
    node = bh.make_node(base, name, role, cc, pid, db_url)
    path = node.home / "evroam.toml"
    doc = tomllib.loads(path.read_text())
    doc.update(settings)
    path.write_text(tomli_w.dumps(doc))
    return node


def register(inviter: bh.Node, joiner: bh.Node, as_name: str, inviter_name: str) -> None:
    invite = json.loads(bh.evroam("partners", "invite", "--home", str(inviter.home), "--name", as_name, "--json"))
    bh.evroam("partners", "register", "--home", str(joiner.home), "--versions-url", invite["versions_url"],
              "--token", invite["token"], "--name", inviter_name)


def invites(home: Path, names: list[str]) -> dict[str, tuple[str, str]]:
    """Token A and versions URL for each name, issued by the node of `home` (in this process)."""
    from evroam.cli_common import with_node

    async def go(node):
        return {n: await node.handshake.invite(n) for n in names}

    return asyncio.run(with_node(home, go))


# --- (a) forwarding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    kind: str  # one | put (bench/http.py WRK_LUA)
    url: str
    token: str
    count: int = STORED
    route: tuple[str, str, str, str] | None = None  # from cc, pid, to cc, pid
    body_file: str = ""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


class Wrk:
    def __init__(self, base: Path) -> None:
        self.script = base / "hub.lua"
        self.script.write_text(bh.WRK_LUA)
        self.runs = 0

    def run(self, load: Load, seconds: float, connections: int = 32) -> Run:
        self.runs += 1
        bh.settle(bh.Server.live)
        parts = urllib.parse.urlsplit(load.url)
        route = load.route or ("", "", "", "")
        env = {**os.environ, "BENCH_KIND": load.kind, "BENCH_PATH": parts.path, "BENCH_COUNT": str(load.count),
               "BENCH_TAG": f"R{self.runs}", "BENCH_BODY": load.body_file, "BENCH_AUTH": encode_token(load.token),
               "BENCH_FROM_CC": route[0], "BENCH_FROM_PID": route[1], "BENCH_TO_CC": route[2],
               "BENCH_TO_PID": route[3]}
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                              "--timeout", "30s", "-s", str(self.script), f"{parts.scheme}://{parts.netloc}/"],
                             capture_output=True, text=True, env=env, timeout=seconds + 60)
        if out.returncode != 0:
            raise SystemExit(f"wrk failed:\n{out.stdout}\n{out.stderr}")
        r = bh._parse_wrk(out.stdout)
        m = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out.stdout)
        p50 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0.0
        return Run(r.rps, p50, r.p99_ms, r.requests, r.errors)


def probe(load: Load) -> None:
    """One request that must succeed before its load is measured."""
    path = "/LOC000001" if load.kind == "one" else "/NL/EVR/probe"
    body = None
    if load.kind == "put":
        body = Path(load.body_file).read_text().replace("__ID__", "probe").encode()
    headers = {"Authorization": encode_token(load.token), "Content-Type": "application/json",
               "X-Request-ID": "probe", "X-Correlation-ID": "probe"}
    if load.route:
        headers.update({"OCPI-from-country-code": load.route[0], "OCPI-from-party-id": load.route[1],
                        "OCPI-to-country-code": load.route[2], "OCPI-to-party-id": load.route[3]})
    req = urllib.request.Request(load.url + path, data=body, method="GET" if body is None else "PUT",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, answer = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    if status not in (200, 201) or b'"status_code":1000' not in answer.replace(b" ", b""):
        raise SystemExit(f"{load.kind} probe at {load.url} answered {status}: {answer[:400]!r}")


def part_a(base: Path, seconds: float, rounds: int, profile: bool) -> list[str]:
    with ThreadPoolExecutor(3) as pool:
        hub, cpo, emsp = pool.map(lambda a: make_node(base, *a), [
            ("hub", "HUB", "NL", "HUB"), ("cpo", "CPO", "NL", "EVR"), ("emsp", "EMSP", "DE", "EVM")])
    bh.seed(cpo.home, f"sqlite+aiosqlite:///{cpo.home / 'evroam.db'}", STORED)
    prof = base / "hub.prof"
    servers = [cpo.serve(), emsp.serve(), serve_node(hub, prof if profile else None)]
    try:
        for s in servers:
            s.wait_ready("/ocpi/versions")
        register(cpo, emsp, "emsp", "cpo")
        register(hub, cpo, "cpo", "hub")
        register(hub, emsp, "emsp", "hub")
        body = base / "session.json"
        body.write_text(json.dumps(session_doc("__ID__")))
        t_get, t_put = emsp.token_out("cpo"), cpo.token_out("emsp")
        h_emsp, h_cpo = emsp.token_out("hub"), cpo.token_out("hub")
        pairs = {
            "GET one Location": (
                Load("one", bh.endpoint(cpo.versions_url, t_get, "locations", "SENDER"), t_get),
                Load("one", bh.endpoint(hub.versions_url, h_emsp, "locations", "SENDER"), h_emsp,
                     route=("DE", "EVM", "NL", "EVR"))),
            "PUT Session": (
                Load("put", bh.endpoint(emsp.versions_url, t_put, "sessions", "RECEIVER"), t_put,
                     body_file=str(body)),
                Load("put", bh.endpoint(hub.versions_url, h_cpo, "sessions", "RECEIVER"), h_cpo,
                     route=("NL", "EVR", "DE", "EVM"), body_file=str(body))),
        }
        return [measure_pair(Wrk(base), label, direct, via, seconds, rounds) for label, (direct, via) in pairs.items()]
    finally:
        for s in servers:
            s.stop()
        print("  peak RSS (VmHWM): " + ", ".join(f"{s.name} {s.rss_mb:.0f} MB" for s in servers))
        if profile and prof.exists():
            print_profile(prof)


def measure_pair(w: Wrk, label: str, direct: Load, via: Load, seconds: float, rounds: int) -> str:
    probe(direct)
    probe(via)
    w.run(direct, 1)
    w.run(via, 1)
    ds, hs = [w.run(direct, seconds)], []
    for _ in range(rounds):
        hs.append(w.run(via, seconds))
        ds.append(w.run(direct, seconds))
    lat_d, lat_h = [], []
    for _ in range(rounds):  # one connection: the latency a request adds, without queueing
        lat_d.append(w.run(direct, seconds, connections=1))
        lat_h.append(w.run(via, seconds, connections=1))
    errors = sum(r.errors for r in ds + hs + lat_d + lat_h)
    d_rps, h_rps = statistics.mean(r.rps for r in ds), statistics.mean(r.rps for r in hs)
    p50_d, p50_h = statistics.median(r.p50_ms for r in lat_d), statistics.median(r.p50_ms for r in lat_h)
    ratio, added = h_rps / d_rps, p50_h - p50_d
    line = (f"  {label:<18} direct {d_rps:7,.0f}/s  via Hub {h_rps:7,.0f}/s  ratio {ratio:.3f} "
            f"({'PASS' if ratio >= 0.5 else 'MISS'} >= 0.5)   p50 at c1: direct {p50_d:.2f} ms, via Hub "
            f"{p50_h:.2f} ms, added {added:.2f} ms ({'PASS' if added <= 2 else 'MISS'} <= 2)"
            f"   c32 p99 direct {statistics.median(r.p99_ms for r in ds):.0f} ms, via Hub "
            f"{statistics.median(r.p99_ms for r in hs):.0f} ms{f', {errors} REQUESTS FAILED' if errors else ''}")
    print(line, flush=True)
    return line


def print_profile(path: Path) -> None:
    stats = pstats.Stats(str(path))
    print("  the Hub's profile, cumulative, top 25 (own code and the libraries it spends in):")
    stats.sort_stats("cumulative").print_stats(r"evroam|sqlalchemy|aiosqlite|aiohttp|starlette|pydantic", 25)
    print("  the Hub's profile, own time, top 20:")
    stats.sort_stats("tottime").print_stats(20)


def serve_node(node: bh.Node, profile: Path | None) -> bh.Server:
    """`evroam serve` of `node`, under cProfile (written to `profile` at exit) if given."""
    if profile is None:
        return node.serve()
    node.server = bh.Server(node.name, [PY, "-m", "cProfile", "-o", str(profile), "-m", "evroam", "serve", "--home",
                                        str(node.home)], node.port, node.home / "serve.log")
    return node.server


# --- (b) fan-out: the child processes ---------------------------------------------------------


def _versions_app(parties: dict[str, dict], on_functional):
    """One aiohttp app for several lightweight OCPI parties, each under
    /{name}/: versions, version details, and any other request handed to
    `on_functional(name, request)`."""
    from aiohttp import web

    ok = {"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z", "data": None}

    async def handle(request: web.Request) -> web.Response:
        name, _, rest = request.path.lstrip("/").partition("/")
        p = parties.get(name)
        if p is None:
            return web.json_response({"status_code": 2001, "timestamp": ok["timestamp"]}, status=404)
        base = f"{request.scheme}://{request.host}/{name}"
        if rest == "versions":
            return web.json_response({**ok, "data": [{"version": V, "url": f"{base}/versions/{V}"}]})
        if rest == f"versions/{V}":
            eps = [{"identifier": i, "role": r, "url": f"{base}/ocpi/{V}/{r.lower()}/{i}"} for i, r in p["endpoints"]]
            return web.json_response({**ok, "data": {"version": V, "endpoints": eps}})
        await on_functional(name, request, rest)
        return web.Response(body=OK_BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


OK_BODY = b'{"status_code":1000,"status_message":"Success","timestamp":"2026-01-01T00:00:00Z","data":null}'


async def _handshake(session, name: str, party: dict, own_versions: str) -> dict[tuple[str, str], str]:
    """As `evroam partners register` runs it: token A, versions, credentials POST; keeps token C."""
    hdrs = {"Authorization": encode_token(party["token_a"])}
    async with session.get(party["versions_url"], headers=hdrs) as r:
        url = next(v["url"] for v in (await r.json(content_type=None))["data"] if v["version"] == V)
    async with session.get(url, headers=hdrs) as r:
        eps = {(e["identifier"], e["role"]): e["url"] for e in (await r.json(content_type=None))["data"]["endpoints"]}
    creds = {"token": party["token_in"], "url": own_versions, "roles": [
        {"role": party["role"], "country_code": party["cc"], "party_id": party["pid"],
         "business_details": {"name": name}}]}
    async with session.post(eps[("credentials", "SENDER")], json=creds, headers=hdrs) as r:
        answer = await r.json(content_type=None)
    if answer.get("status_code") != 1000:
        raise SystemExit(f"{name}: credentials POST answered {answer}")
    party["token_c"] = answer["data"]["token"]
    return eps


async def _serve(app):
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def _stdin_lines():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


async def child_sinks(spec: dict) -> None:
    """The 20 eMSPs: register, then record (receipt time, PATCH number) of
    every Location message; `stop` on stdin writes them out."""
    import aiohttp

    parties = spec["parties"]
    receipts: list[tuple[float, int]] = []
    other = {"n": 0}
    stamp = re.compile(rb'"last_updated"\s*:\s*"([^"]+)"')

    async def on_functional(name, request, rest):
        body = await request.read()
        if "/locations/" not in rest:
            other["n"] += 1
            return
        now = time.time()
        # A PATCH carries the EVSE's status and last_updated; a PUT (coalesced) the whole Location.
        for m in stamp.findall(body)[:1] if request.method == "PATCH" else stamp.findall(body)[-1:]:
            receipts.append((now, _number(m.decode())))

    runner, port = await _serve(_versions_app(parties, on_functional))
    async with aiohttp.ClientSession() as s:
        for name, p in parties.items():
            await _handshake(s, name, p, f"http://127.0.0.1:{port}/{name}/versions")
    _say("ready")
    reader = await _stdin_lines()
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "count":
            _say("count", len(receipts), other["n"])
        elif line in ("stop", ""):
            break
    Path(spec["out"]).write_text(json.dumps(receipts))
    await runner.cleanup()
    _say("stopped")


def _number(last_updated: str) -> int:
    t = time.strptime(last_updated[:19], "%Y-%m-%dT%H:%M:%S")
    return int(time.mktime(t) - time.timezone) - EPOCH


async def child_cpo(spec: dict) -> None:
    """The CPO: registers, PUTs its Locations (broadcast, before any eMSP is
    there), then on `go` PATCHes EVSE statuses at `rate`/s for `seconds`,
    spread over the Hub processes' bases, recording when each was answered."""
    import aiohttp

    name, p = "cpo", spec["party"]

    async def nothing(*_):
        return None

    runner, port = await _serve(_versions_app({name: p}, nothing))
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as s:
        eps = await _handshake(s, name, p, f"http://127.0.0.1:{port}/{name}/versions")
        receiver = eps[("locations", "RECEIVER")].rstrip("/")
        path = urllib.parse.urlsplit(receiver).path
        bases = spec["hub_bases"]
        hdrs = {"Authorization": encode_token(p["token_c"]), "Content-Type": "application/json",
                "OCPI-from-country-code": "NL", "OCPI-from-party-id": "EVR",
                "OCPI-to-country-code": spec["hub_key"][0], "OCPI-to-party-id": spec["hub_key"][1]}
        sem = asyncio.Semaphore(32)

        async def send(method, url, body) -> bool:
            async with sem, s.request(method, url, data=body, headers={**hdrs, "X-Request-ID": secrets.token_hex(8),
                                                                         "X-Correlation-ID": "bench"}) as r:
                answer = await r.read()
                return r.status == 200 and b'"status_code":1000' in answer

        docs = [_fanout_location(k) for k in range(spec["locations"])]
        oks = await asyncio.gather(*(send("PUT", f"{bases[k % len(bases)]}{path}/NL/EVR/{d['id']}",
                                          json.dumps(d).encode()) for k, d in enumerate(docs)))
        _say("seeded", sum(oks))
        reader = await _stdin_lines()
        await reader.readline()
        accepted: dict[int, float] = {}
        failed = 0

        async def patch(n: int) -> None:
            nonlocal failed
            k = n % spec["locations"]
            body = json.dumps({"status": ("CHARGING", "AVAILABLE")[(n // spec["locations"]) % 2],
                               "last_updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + n))})
            if await send("PATCH", f"{bases[n % len(bases)]}{path}/NL/EVR/FAN{k:05d}/EVSE-{k}-0", body.encode()):
                accepted[n] = time.time()
            else:
                failed += 1

        t0, tasks, n = time.monotonic(), set(), 0
        while (due := time.monotonic() - t0) < spec["seconds"]:
            while n < due * spec["rate"]:
                task = asyncio.ensure_future(patch(n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        Path(spec["out"]).write_text(json.dumps({"accepted": accepted, "failed": failed, "sent": n}))
        _say("done", len(accepted), failed)
    await runner.cleanup()


def _fanout_location(k: int) -> dict:
    doc = bh.location(k, evses=1, oid=f"FAN{k:05d}")
    doc["last_updated"] = "2024-01-01T00:00:00Z"
    for e in doc["evses"]:
        e["last_updated"] = "2024-01-01T00:00:00Z"
    return doc


# --- (b) fan-out: the run ------------------------------------------------------------------------


class Child:
    """A child process of this script, spoken to by lines on stdin/stdout."""

    def __init__(self, role: str, spec: dict, base: Path) -> None:
        path = base / f"{role}.json"
        path.write_text(json.dumps(spec))
        self.proc = subprocess.Popen([PY, str(Path(__file__).resolve()), "--child", role, "--spec", str(path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cv:
                self.lines.append(line.strip())
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, word: str, timeout: float = 300) -> list[str]:
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                for i, line in enumerate(self.lines):
                    if line.split()[:1] == [word]:
                        del self.lines[: i + 1]
                        return line.split()[1:]
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise SystemExit(f"child {self.proc.args[3]} gave no {word!r} (exit {self.proc.poll()})")
                self._cv.wait(0.5)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


def _party(name: str, role: str, cc: str, pid: str, inv: tuple[str, str], endpoints: list) -> dict:
    return {"role": role, "cc": cc, "pid": pid, "token_a": inv[0], "versions_url": inv[1],
            "token_in": secrets.token_hex(16), "endpoints": endpoints}


def outbox_pending(hub: bh.Node) -> int:
    sql = "SELECT count(*) FROM outbox WHERE status = 'PENDING'"
    if hub.db_url is None:
        with contextlib.closing(sqlite3.connect(hub.home / "evroam.db", timeout=5)) as db:
            return db.execute(sql).fetchone()[0]

    async def ask() -> int:
        import asyncpg

        conn = await asyncpg.connect(hub.db_url.replace("+asyncpg", ""))
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(ask())


def part_b(base: Path, label: str, seconds: float, db_url: str | None, processes: int,
           profile: bool = False) -> str:
    hub = make_node(base, f"hub-{label}", "HUB", "NL", "HUB", db_url, run_workers=True)
    homes = [hub]
    for i in range(1, processes):  # the same Hub, another process: its home copied, its own port
        port = bh.free_port()
        home = base / f"hub-{label}-{i}"
        shutil.copytree(hub.home, home)
        doc = tomllib.loads((home / "evroam.toml").read_text())
        doc.update(port=port, public_url=f"http://127.0.0.1:{port}")
        (home / "evroam.toml").write_text(tomli_w.dumps(doc))
        homes.append(bh.Node(f"hub-{label}-{i}", home, port, db_url))
    prof = base / "hub.prof" if profile else None
    servers = [serve_node(h, prof if i == 0 else None) for i, h in enumerate(homes)]
    children: list[Child] = []
    try:
        for s in servers:
            s.wait_ready("/ocpi/versions")
        names = [f"emsp{i:02d}" for i in range(SINKS)]
        inv = invites(hub.home, ["cpo", *names])
        sink_eps = [["credentials", "SENDER"], ["locations", "RECEIVER"], ["hubclientinfo", "RECEIVER"]]
        cpo_spec = {"party": _party("cpo", "CPO", "NL", "EVR", inv["cpo"], [["credentials", "SENDER"],
                                                                             ["locations", "SENDER"]]),
                    "hub_bases": [f"http://127.0.0.1:{h.port}" for h in homes], "hub_key": ["NL", "HUB"],
                    "locations": FANOUT_LOCATIONS, "rate": RATE, "seconds": seconds, "out": str(base / "cpo.out")}
        cpo = Child("cpo", cpo_spec, base)
        children.append(cpo)
        seeded = int(cpo.wait_for("seeded")[0])
        sinks = Child("sinks", {"parties": {n: _party(n, "EMSP", "DE", f"E{i:02d}", inv[n], sink_eps)
                                            for i, n in enumerate(names)}, "out": str(base / "sinks.out")}, base)
        children.append(sinks)
        sinks.wait_for("ready")
        # The registrations' own ClientInfo pushes, out of the way of the figure.
        _drain(hub, 120)
        cpu0 = [bh.cpu_s(s.proc.pid) for s in servers]
        t0 = time.time()
        cpo.send("go")
        depth = []
        while not cpo.lines or not cpo.lines[-1].startswith("done"):
            time.sleep(min(5.0, seconds / 4))
            depth.append((round(time.time() - t0), outbox_pending(hub)))
            if cpo.proc.poll() is not None:
                break
        cpo.wait_for("done", timeout=seconds + 120)
        t_load = time.time() - t0
        cpu_load = [bh.cpu_s(s.proc.pid) - c for s, c in zip(servers, cpu0, strict=True)]
        sent = json.loads(Path(cpo_spec["out"]).read_text())
        expected = len(sent["accepted"]) * SINKS
        drained = _wait_receipts(sinks, hub, expected, 600)
        time.sleep(1)  # the last answers of an empty outbox reach the sinks
        sinks.send("stop")
        sinks.wait_for("stopped")
        receipts = json.loads((base / "sinks.out").read_text())
    finally:
        for c in children:
            c.close()
        for s in servers:
            s.stop()
        if prof is not None and prof.exists():
            print_profile(prof)
    return _fanout_report(label, seeded, sent, receipts, expected, t0, t_load, drained, depth, servers, cpu_load)


def _drain(hub: bh.Node, timeout: float) -> None:
    end = time.monotonic() + timeout
    while outbox_pending(hub) and time.monotonic() < end:
        time.sleep(0.2)


def _wait_receipts(sinks: Child, hub: bh.Node, expected: int, timeout: float) -> bool:
    """Until the sinks hold `expected` receipts or the Hub's outbox is empty
    (PATCHes of one EVSE queued while an earlier one waited were folded into
    it: fewer receipts), or no progress for 20 s, or `timeout`."""
    end, last, still = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < end:
        sinks.send("count")
        got = int(sinks.wait_for("count")[0])
        if got >= expected or outbox_pending(hub) == 0:
            return True
        if got != last:
            last, still = got, time.monotonic()
        elif time.monotonic() - still > 20:
            return False
        time.sleep(0.5)
    return False


FOLDED = " (outbox empty: the rest folded into later PATCHes of the same EVSE)"


def _fanout_report(label, seeded, sent, receipts, expected, t0, t_load, drained, depth, servers, cpu_load) -> str:
    accepted = {int(k): v for k, v in sent["accepted"].items()}
    lags = sorted(t - accepted[n] for t, n in receipts if n in accepted)
    last = max((t for t, _ in receipts), default=t0)
    in_window = sum(1 for t, _ in receipts if t - t0 <= t_load)
    total = len(lags)
    sustained = total / max(last - t0, 1e-9)

    def pct(q: float) -> float:
        return lags[min(len(lags) - 1, int(len(lags) * q))] if lags else float("nan")

    cpu = ", ".join(f"{s.name} {c / t_load * 100:.0f} % CPU, peak RSS {s.rss_mb:.0f} MB"
                    for s, c in zip(servers, cpu_load, strict=True))
    lines = [
        f"  fan-out, {label}: {seeded} Locations seeded; {len(accepted):,} PATCHes accepted in {t_load:.1f} s "
        f"({len(accepted) / t_load:.0f}/s, {sent['failed']} refused), x {SINKS} sinks = {expected:,} expected",
        f"    received {total:,}{'' if total >= expected else FOLDED if drained else ' (NOT ALL: stalled or timed out)'}; "
        f"{in_window / t_load:,.0f}/s during the load, {sustained:,.0f}/s until the last receipt "
        f"({last - t0:.1f} s) ({'PASS' if sustained >= 3400 and drained else 'MISS'} >= 3,400/s)",
        f"    lag p50 {pct(0.5):.2f} s, p99 {pct(0.99):.2f} s, max {lags[-1] if lags else float('nan'):.2f} s "
        f"({'PASS' if pct(0.99) < 5 else 'MISS'} < 5 s)",
        f"    outbox PENDING over time (s, rows): {depth}",
        f"    {cpu}",
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=("a", "b"), default=None)
    ap.add_argument("--pg-url", default="", help="an admin DSN of PostgreSQL (default 127.0.0.1:5432, user postgres)")
    ap.add_argument("--profile", action="store_true", help="run the Hub under cProfile (b: SQLite only)")
    ap.add_argument("--seconds", type=float, help="(b): seconds of load (default 60, quick 10)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(Path(args.spec).read_text())
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        asyncio.run({"sinks": child_sinks, "cpo": child_cpo}[args.child](spec))
        return
    if not shutil.which("wrk") and args.part != "b":
        raise SystemExit("wrk is needed for (a): apt-get install -y wrk")
    if args.pg_url:
        u = urllib.parse.urlsplit(args.pg_url)
        bh.PG.update(host=u.hostname or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres")
    bh.machine("start")
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="evroam-bench-hub-") as tmp:
        base = Path(tmp)
        if args.part in (None, "a"):
            print("(a) forwarding through the Hub, SQLite, wrk -t1 -c32 for throughput, -c1 for p50", flush=True)
            (base / "a").mkdir()
            out += part_a(base / "a", 2.0 if args.quick else 5.0, 1 if args.quick else 2, args.profile)
        if args.part in (None, "b"):
            seconds = args.seconds or (10.0 if args.quick else 60.0)
            print(f"(b) fan-out: {RATE:.0f} EVSE status PATCHes/s to {SINKS} eMSPs for {seconds:g} s", flush=True)
            (base / "b1").mkdir(parents=True)
            out.append(part_b(base / "b1", "sqlite", seconds, None, 1, args.profile))
            name = f"evroam_bench_hub_{os.getpid()}"
            if not args.profile and (db := bh.pg_database(name)):
                try:
                    (base / "b2").mkdir()
                    out.append(part_b(base / "b2", "postgresql-2", seconds, db, 2))
                finally:
                    bh.drop_pg(name)
    print("summary:")
    print("\n".join(out))
    bh.machine("end")


if __name__ == "__main__":
    main()
