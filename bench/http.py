"""HTTP benchmark (issue 9): the paths partners hit, against bare Starlette.

Each figure is measured in one run with its baseline interleaved (baseline,
evroam, baseline, evroam, baseline): these machines are noisy, so a ratio
measured side by side means more than an absolute rate. The baseline is bare
Starlette on uvicorn (uvloop, httptools), one process, answering every
request with the exact bytes evroam answered the same request with.

evroam runs as real `evroam serve` processes made with `evroam init`, on
SQLite and (when 127.0.0.1:5432 answers) PostgreSQL, with a registered
partner whose token the load generator sends. Deliveries and scheduled pulls
are off in every node (run_workers = false, as when `evroam worker` runs
them): nothing of the bench's own set-up competes with the request path.

Load: wrk -t1 -c32 (a Lua script gives each request its own path, ids and
bodies); without wrk, a small asyncio client with a warning. Push delivery is
measured by bench/delivery.py when it is there.

    .venv/bin/python bench/http.py [--quick] [--only NAME[,NAME]] [--duration S]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where this
# file would shadow the standard library's `http` (urllib and aiohttp need
# it): the folder goes last, so the standard library wins.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent / "src")] + [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import textwrap
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import tomli_w
from samples import location

from evroam.ocpi.headers import encode_token

PY = sys.executable
CONNECTIONS = 32
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
SMALL, LARGE = 1_000, 100_000
PATCH_TARGETS = 100
FIGURES = ("get-one", "get-one-pg", "page", "scale", "put", "patch", "push")

BASELINE = textwrap.dedent("""
    import sys, uvicorn
    from pathlib import Path
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    BODY = Path(sys.argv[2]).read_bytes()
    async def answer(request):
        await request.body()
        return Response(BODY, media_type="application/json")
    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "PUT", "PATCH"])])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)
""")

# One request per call, from a counter: each GET asks for another object, each
# PUT writes a new Location, each PATCH a newer status (a no-op is no work).
WRK_LUA = textwrap.dedent("""
    local n = 0
    local kind = os.getenv("BENCH_KIND")
    local prefix = os.getenv("BENCH_PATH")
    local count = tonumber(os.getenv("BENCH_COUNT"))
    local tag = os.getenv("BENCH_TAG")
    local since = tonumber(os.getenv("BENCH_SINCE"))
    local headers = {["Authorization"] = os.getenv("BENCH_AUTH"), ["Content-Type"] = "application/json"}
    local to_cc = os.getenv("BENCH_TO_CC")
    if to_cc ~= nil and to_cc ~= "" then  -- through a Hub (bench/hub.py): the routing headers
        headers["OCPI-from-country-code"] = os.getenv("BENCH_FROM_CC")
        headers["OCPI-from-party-id"] = os.getenv("BENCH_FROM_PID")
        headers["OCPI-to-country-code"] = to_cc
        headers["OCPI-to-party-id"] = os.getenv("BENCH_TO_PID")
    end
    local before, after = "", ""
    if kind == "put" then
        local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
        local template = f:read("*a")
        f:close()
        local at = string.find(template, "__ID__", 1, true)
        before, after = string.sub(template, 1, at - 1), string.sub(template, at + 6)
    end
    request = function()
        n = n + 1
        headers["X-Request-ID"] = tag .. "-" .. n
        headers["X-Correlation-ID"] = tag .. "-" .. n
        if kind == "one" then
            return wrk.format("GET", string.format("%s/LOC%06d", prefix, (n * 7919) % count), headers)
        elseif kind == "page" then
            return wrk.format("GET", string.format("%s?offset=%d&limit=50", prefix, (n * 50) % count), headers)
        elseif kind == "put" then
            local id = tag .. "-" .. n
            return wrk.format("PUT", prefix .. "/NL/EVR/" .. id, headers, before .. id .. after)
        else
            local k = n % count
            local status = (math.floor(n / count) % 2 == 0) and "CHARGING" or "AVAILABLE"
            local body = string.format('{"status":"%s","last_updated":"%s"}', status,
                                       os.date("!%Y-%m-%dT%H:%M:%SZ", since + n))
            return wrk.format("PATCH", string.format("%s/NL/EVR/PATCH%04d/EVSE-%d-0", prefix, k, k), headers, body)
        end
    end
""")


# --- data ---------------------------------------------------------------------------------------


async def _seed_store(db_url: str, count: int) -> None:
    from evroam.ocpi.locations import Location
    from evroam.store.db import create_engine
    from evroam.store.objects import ObjectKey, upsert_many

    engine = create_engine(db_url)
    try:
        for start in range(0, count, 5000):
            rows = []
            for i in range(start, min(start + 5000, count)):
                loc = Location.from_wire(location(i))
                rows.append((ObjectKey("locations", 0, loc.country_code, loc.party_id, loc.id),
                             loc.to_json_bytes().decode(), loc.last_updated, None))
            async with engine.begin() as conn:
                await upsert_many(conn, rows)
    finally:
        await engine.dispose()


def seed(home: Path, db_url: str, count: int) -> str:
    """`count` of our Locations, validated as the importer does, written
    straight through the store layer (`data import` takes ~1 ms each)."""
    try:
        asyncio.run(_seed_store(db_url, count))
        return "store layer"
    except (ImportError, AttributeError, TypeError) as exc:  # the store layer moved: the CLI stays
        print(f"  (store-layer seeding unavailable: {exc!r}; using `evroam data import`)")
    for start in range(0, count, 5000):
        path = home / f"seed-{start}.json"
        path.write_text(json.dumps([location(i) for i in range(start, min(start + 5000, count))]))
        evroam("data", "import", "--home", str(home), "--module", "locations", str(path))
        path.unlink()
    return "evroam data import"


# --- processes ----------------------------------------------------------------------------------


def evroam(*args: str) -> str:
    proc = subprocess.run([PY, "-m", "evroam", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "500"})
    if proc.returncode != 0:
        raise SystemExit(f"evroam {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (401 without a token): it is up
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{proc.args} exited with {proc.returncode}") from None
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(servers: list[Server], window_s: float = 0.25, limit_s: float = 60) -> None:
    """Wait until no server is busy: a slow one still works through the
    requests a run left open after wrk closed its connections, and that work
    would be charged to the next run."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        before = [cpu_s(s.proc.pid) for s in servers]
        time.sleep(window_s)
        if all(cpu_s(s.proc.pid) - b < 0.1 * window_s for s, b in zip(servers, before, strict=True)):
            return


class Server:
    """A process serving HTTP on 127.0.0.1:port until stopped."""

    live: list[Server] = []

    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name, self.port, self.url = name, port, f"http://127.0.0.1:{port}"
        self._log = log.open("w")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        self.rss_mb = float("nan")
        Server.live.append(self)

    def wait_ready(self, path: str) -> Server:
        wait_http(self.url + path, self.proc)
        return self

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            Server.live.remove(self)
        if self.proc.poll() is None:
            self.rss_mb = peak_rss_mb(self.proc.pid)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()


def baseline(base: Path, body: bytes) -> Server:
    port = free_port()
    path = base / f"baseline-{port}.json"
    path.write_bytes(body)
    return Server("baseline", [PY, "-c", BASELINE, str(port), str(path)], port,
                  base / f"baseline-{port}.log").wait_ready("/")


# --- nodes --------------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    home: Path
    port: int
    db_url: str | None
    server: Server | None = None

    @property
    def versions_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocpi/versions"

    def serve(self) -> Server:
        """Started; call wait_ready("/ocpi/versions") on the result before use."""
        self.server = Server(self.name, [PY, "-m", "evroam", "serve", "--home", str(self.home)], self.port,
                             self.home / "serve.log")
        return self.server

    def token_out(self, partner: str) -> str:
        """The token this node calls `partner` with (kept in clear, by necessity)."""
        with contextlib.closing(sqlite3.connect(self.home / "evroam.db")) as db:
            row = db.execute("SELECT token_out FROM parties WHERE name = ?", (partner,)).fetchone()
        assert row and row[0], f"{self.name} holds no token for {partner}"
        return row[0]


def make_node(base: Path, name: str, role: str, cc: str, pid: str, db_url: str | None = None) -> Node:
    port = free_port()
    home = base / name
    extra = ["--db", db_url] if db_url else []
    evroam("init", "--home", str(home), "--role", role, "--country", cc, "--party", pid, "--name", name,
           "--public-url", f"http://127.0.0.1:{port}", "--port", str(port), *extra)
    path = home / "evroam.toml"
    doc = tomllib.loads(path.read_text())
    doc["run_workers"] = False
    path.write_text(tomli_w.dumps(doc))
    return Node(name, home, port, db_url)


@dataclass
class Pair:
    """Our CPO node, serving `stored` Locations, and an eMSP node registered
    with it: the eMSP is the partner of the Sender figures and the node under
    test of the Receiver figures (the CPO pushing to it)."""

    cpo: Node
    emsp: Node
    stored: int
    seeded_by: str
    get_token: str = ""
    put_token: str = ""
    sender_url: str = ""
    receiver_url: str = ""

    def stop(self) -> None:
        for n in (self.cpo, self.emsp):
            if n.server:
                n.server.stop()


def make_pair(base: Path, label: str, stored: int, cpo_db: str | None = None) -> Pair:
    with ThreadPoolExecutor(2) as pool:  # each `evroam` command spends seconds on imports alone
        made = pool.map(lambda a: make_node(base, *a), [(f"cpo-{label}", "CPO", "NL", "EVR", cpo_db),
                                                         (f"emsp-{label}", "EMSP", "DE", "EVM")])
        cpo, emsp = list(made)
    seeded_by = seed(cpo.home, cpo_db or f"sqlite+aiosqlite:///{cpo.home / 'evroam.db'}", stored)
    pair = Pair(cpo, emsp, stored, seeded_by)
    try:
        for server in [cpo.serve(), emsp.serve()]:
            server.wait_ready("/ocpi/versions")
        invite = json.loads(evroam("partners", "invite", "--home", str(cpo.home), "--name", emsp.name, "--json"))
        evroam("partners", "register", "--home", str(emsp.home), "--versions-url", invite["versions_url"],
               "--token", invite["token"], "--name", cpo.name)
        pair.get_token = emsp.token_out(cpo.name)
        pair.sender_url = endpoint(cpo.versions_url, pair.get_token, "locations", "SENDER")
        if cpo_db is None:  # the Receiver figures are SQLite only
            pair.put_token = cpo.token_out(emsp.name)
            pair.receiver_url = endpoint(emsp.versions_url, pair.put_token, "locations", "RECEIVER")
    except BaseException:
        pair.stop()
        raise
    return pair


def call(method: str, url: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Authorization": encode_token(token), "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def endpoint(versions_url: str, token: str, identifier: str, role: str) -> str:
    """Discovered as a partner would: versions, then the 2.2.1 details."""
    _, body = call("GET", versions_url, token)
    details = next(v["url"] for v in json.loads(body)["data"] if v["version"] == "2.2.1")
    _, body = call("GET", details, token)
    return next(e["url"] for e in json.loads(body)["data"]["endpoints"]
                if e["identifier"] == identifier and e["role"] == role).rstrip("/")


# --- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What to send: `kind` is one, page, put or patch (see WRK_LUA); `url`
    the module's endpoint; a baseline gets the same requests at its own URL."""

    kind: str
    url: str
    token: str
    count: int
    tag: str = "R"
    since: int = 0  # PATCH: last_updated of request n is since + n seconds
    body_file: str = ""

    def at(self, server_url: str) -> Load:
        return Load(self.kind, server_url + urllib.parse.urlsplit(self.url).path, self.token, self.count,
                    self.tag, self.since, self.body_file)

    def request(self, n: int) -> tuple[str, str, bytes | None]:
        """The n-th request (from 1), as WRK_LUA builds it: for the asyncio fallback."""
        if self.kind == "one":
            return "GET", f"{self.url}/LOC{(n * 7919) % self.count:06d}", None
        if self.kind == "page":
            return "GET", f"{self.url}?offset={(n * 50) % self.count}&limit=50", None
        if self.kind == "put":
            oid = f"{self.tag}-{n}"
            return "PUT", f"{self.url}/NL/EVR/{oid}", Path(self.body_file).read_bytes().replace(b"__ID__", oid.encode())
        k = n % self.count
        status = "CHARGING" if (n // self.count) % 2 == 0 else "AVAILABLE"
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since + n))
        body = json.dumps({"status": status, "last_updated": at}, separators=(",", ":")).encode()
        return "PATCH", f"{self.url}/NL/EVR/PATCH{k:04d}/EVSE-{k}-0", body


@dataclass
class Rate:
    rps: float
    p99_ms: float
    requests: int
    errors: int


class Generator:
    """wrk when installed, else the asyncio client (with a warning)."""

    def __init__(self, base: Path) -> None:
        self.wrk = shutil.which("wrk")
        self.script = base / "bench.lua"
        self.script.write_text(WRK_LUA)
        self.runs = 0
        self.history: list[tuple[Load, Rate]] = []

    @property
    def name(self) -> str:
        return f"wrk -t1 -c{CONNECTIONS}" if self.wrk else f"asyncio client, {CONNECTIONS} connections"

    def run(self, load: Load, seconds: float) -> Rate:
        self.runs += 1
        settle(Server.live)
        # Every run writes ids of its own and PATCHes newer than the last run's.
        load = replace(load, tag=f"{load.tag}{self.runs}", since=load.since + self.runs * 1_000_000)
        result = self._wrk(load, seconds) if self.wrk else on_uvloop(_aio_load(load, seconds))
        self.history.append((load, result))
        return result

    def runs_at(self, server: Server, since: int = 0) -> list[tuple[Load, Rate]]:
        """The runs against `server`, from history[since:]."""
        return [(load, r) for load, r in self.history[since:] if load.url.startswith(server.url + "/")]

    def _wrk(self, load: Load, seconds: float) -> Rate:
        parts = urllib.parse.urlsplit(load.url)
        env = {**os.environ, "BENCH_KIND": load.kind, "BENCH_PATH": parts.path, "BENCH_COUNT": str(load.count),
               "BENCH_TAG": load.tag, "BENCH_SINCE": str(load.since), "BENCH_BODY": load.body_file,
               "BENCH_AUTH": encode_token(load.token)}
        # --timeout: a slow answer is a slow figure, not a failed request (wrk gives up at 2 s).
        out = subprocess.run([self.wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "30s",
                              "-s", str(self.script), f"{parts.scheme}://{parts.netloc}/"],
                             capture_output=True, text=True, env=env, timeout=seconds + 60)
        if out.returncode != 0:
            raise SystemExit(f"wrk failed:\n{out.stdout}\n{out.stderr}")
        return _parse_wrk(out.stdout)


def _parse_wrk(text: str) -> Rate:
    def number(pattern: str) -> float:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else 0.0

    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errors = number(r"Non-2xx or 3xx responses:\s+(\d+)")
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    return Rate(number(r"Requests/sec:\s+([\d.]+)"), float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0,
                int(number(r"(\d+) requests in")), int(errors))


def on_uvloop(coro: Coroutine[object, object, Rate]) -> Rate:
    """The fallback client runs on the loop the servers run on."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _aio_load(load: Load, seconds: float) -> Rate:
    import aiohttp

    headers = {"Authorization": encode_token(load.token), "Content-Type": "application/json"}
    counter, latencies, errors = iter(range(1, 1 << 62)), [], 0
    end = time.perf_counter() + seconds

    async def one_connection(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < end:
            method, url, body = load.request(next(counter))
            t = time.perf_counter()
            async with session.request(method, url, data=body, headers=headers) as r:
                await r.read()
                errors += r.status >= 300
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:
        await asyncio.gather(*(one_connection(session) for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0
    return Rate(len(latencies) / elapsed, p99, len(latencies), errors)


# --- figures ------------------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    evroam: str
    baseline: str = ""
    ratio: float | None = None
    target: float | None = None
    note: str = ""
    failed: int = 0  # requests not answered 2xx: such a figure passes nothing

    @property
    def verdict(self) -> str:
        if self.failed:
            return "FAIL"
        if self.ratio is None or self.target is None:
            return ""
        return "PASS" if self.ratio >= self.target else "MISS"


@dataclass
class Bench:
    base: Path
    gen: Generator
    seconds: float
    rounds: int
    rows: list[Row]

    def interleave(self, first: Load, second: Load) -> tuple[list[Rate], list[Rate]]:
        """first, second, first, … (rounds of second, one more of first), after
        a short warm-up of each; the rates of each, in order."""
        for load in (first, second):
            self.gen.run(load, 1)
        a, b = [self.gen.run(first, self.seconds)], []
        for _ in range(self.rounds):
            b.append(self.gen.run(second, self.seconds))
            a.append(self.gen.run(first, self.seconds))
        return a, b

    def against_baseline(self, label: str, load: Load, target: float, check: Callable[[], str] | None = None,
                         body: bytes | None = None) -> Row:
        body = probe(load) if body is None else body
        server = baseline(self.base, body)
        try:
            bases, ours = self.interleave(load.at(server.url), load)
        finally:
            server.stop()
        note = f"p99 {statistics.median(r.p99_ms for r in ours):.0f} ms, {len(body)} B"
        if check:
            note += ", " + check()
        return self.add(Row(label, rate(ours), rate(bases), mean(ours) / mean(bases), target, note), ours + bases)

    def add(self, row: Row, rates: list[Rate]) -> Row:
        row.failed = sum(r.errors for r in rates)
        if row.failed:
            row.note += f", {row.failed} requests failed"
        self.rows.append(row)
        print_row(row)
        return row


def mean(rates: list[Rate]) -> float:
    return statistics.mean(r.rps for r in rates)


def rate(rates: list[Rate]) -> str:
    return f"{mean(rates):,.0f}/s"


def probe(load: Load) -> bytes:
    """The first request, once, which must succeed: its answer is the body the
    baseline serves."""
    method, url, body = replace(load, tag="probe").request(1)
    status, answer = call(method, url, load.token, body)
    if status not in (200, 201) or b'"status_code":1000' not in answer:
        raise SystemExit(f"{method} {url} answered {status}: {answer[:300]!r}")
    return answer


def get_one(b: Bench, pair: Pair, label: str, target: float) -> None:
    b.against_baseline(label, Load("one", pair.sender_url, pair.get_token, pair.stored), target)


def page(b: Bench, pair: Pair) -> None:
    b.against_baseline("GET a page of 50 Locations, SQLite", Load("page", pair.sender_url, pair.get_token,
                                                                   pair.stored), 0.5)


def scale(b: Bench, small: Pair, large: Pair) -> None:
    few = Load("one", small.sender_url, small.get_token, small.stored)
    many = Load("one", large.sender_url, large.get_token, large.stored)
    probe(many)
    fews, manys = b.interleave(few, many)
    note = f"p99 {statistics.median(r.p99_ms for r in manys):.0f} ms; against {small.stored:,} stored"
    b.add(Row(f"GET one Location, {large.stored:,} stored, SQLite", rate(manys), rate(fews) + " (1,000)",
              mean(manys) / mean(fews), 0.8, note), fews + manys)


def stored_count(node: Node, where: str = "owner_id <> 0") -> int:
    with contextlib.closing(sqlite3.connect(node.home / "evroam.db")) as db:
        return db.execute(f"SELECT count(*) FROM objects WHERE module = 'locations' AND {where}").fetchone()[0]


def put(b: Bench, pair: Pair) -> None:
    template = b.base / "put.json"
    template.write_text(json.dumps(location(0, oid="__ID__")))
    load = Load("put", pair.receiver_url, pair.put_token, 0, tag="P", body_file=str(template))
    before, mark = stored_count(pair.emsp), len(b.gen.history)

    def persisted() -> str:
        # Every answered PUT (the probe too) is a new row by now; wrk does not
        # count the requests still open when a run ends, so rows may be more.
        sent = 1 + sum(r.requests for _, r in b.gen.runs_at(pair.emsp.server, mark))
        rows = stored_count(pair.emsp) - before
        return f"{rows:,} new rows for {sent:,} PUTs answered{'' if rows >= sent else ' (ROWS MISSING)'}"

    b.against_baseline("receiver Location PUT, persisted, SQLite", load, 0.2, persisted)


def patch_targets_holding(node: Node, since: int) -> int:
    """How many PATCH targets hold an EVSE status written at `since` or later."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
    with contextlib.closing(sqlite3.connect(node.home / "evroam.db")) as db:
        docs = [json.loads(d) for (d,) in db.execute(
            "SELECT data FROM objects WHERE module = 'locations' AND owner_id <> 0 AND oid_key LIKE 'PATCH%'")]
    return sum(1 for d in docs if any(e["last_updated"][:19] >= stamp for e in d["evses"]))


def patch(b: Bench, pair: Pair) -> None:
    for k in range(PATCH_TARGETS):
        doc = location(k, oid=f"PATCH{k:04d}")
        doc["last_updated"] = "2024-01-01T00:00:00Z"
        for evse in doc["evses"]:
            evse["last_updated"] = "2024-01-01T00:00:00Z"
        status, answer = call("PUT", f"{pair.receiver_url}/NL/EVR/PATCH{k:04d}", pair.put_token,
                              json.dumps(doc).encode())
        assert status in (200, 201), answer
    since = 1_717_200_000  # 2024-06-01T00:00:00Z: after the targets' last_updated
    load = Load("patch", pair.receiver_url, pair.put_token, PATCH_TARGETS, since=since)
    mark = len(b.gen.history)

    def persisted() -> str:
        last = b.gen.runs_at(pair.emsp.server, mark)[-1][0]
        return f"{patch_targets_holding(pair.emsp, last.since)} of {PATCH_TARGETS} Locations hold the last run's PATCHes"

    b.against_baseline("receiver EVSE status PATCH, persisted, SQLite", load, 0.25, persisted,
                       body=probe(replace(load, since=since - 1_000_000)))


def push(b: Bench, pg_ok: bool, count: int) -> None:
    """Rows from bench/delivery.py (another part of issue 9) when it is there."""
    path = HERE / "delivery.py"
    if not path.is_file():
        print("  push delivery figures: measured by bench/delivery.py (not in this tree)")
        return
    spec = importlib.util.spec_from_file_location("bench_delivery", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        measure = module.measure_push
    except Exception as exc:
        print(f"  push delivery figures: bench/delivery.py did not load ({exc!r})")
        return
    runs = [("sqlite", 1)] + ([("postgresql", 1), ("postgresql", 2)] if pg_ok else [])
    results = {}
    for backend, workers in runs:
        r = results[backend, workers] = measure(backend, workers, count)
        b.add(Row(f"push {count:,} Locations, {backend}, {workers} worker{'s' * (workers > 1)}",
                  f"{r['evroam_per_s']:,.0f}/s", f"{r['aiohttp_per_s']:,.0f}/s (aiohttp)",
                  r["evroam_per_s"] / r["aiohttp_per_s"], 0.5), [])
    if pg_ok:
        one, two = results["postgresql", 1], results["postgresql", 2]
        b.add(Row("push, 2 workers against 1, postgresql", f"{two['evroam_per_s']:,.0f}/s",
                  f"{one['evroam_per_s']:,.0f}/s (1 worker)", two["evroam_per_s"] / one["evroam_per_s"], 1.6), [])


# --- PostgreSQL -----------------------------------------------------------------------------------


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(**PG, database="postgres", timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_database(name: str) -> str | None:
    """A fresh database; None (with the reason printed) when PostgreSQL is not there."""
    try:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"  PostgreSQL figures skipped: {PG['host']}:{PG['port']} not usable ({exc!r})")
        return None
    return f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


def drop_pg(name: str) -> None:
    with contextlib.suppress(Exception):
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- EXPLAIN QUERY PLAN ---------------------------------------------------------------------------


async def _captured_get_one(db_url: str) -> list[tuple[str, tuple]]:
    """The SQL that `store.objects.find_any_owner` (the Sender GET one) runs."""
    import sqlalchemy as sa

    from evroam.store.db import create_engine
    from evroam.store.objects import find_any_owner

    seen: list[tuple[str, tuple]] = []
    engine = create_engine(db_url)

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "objects" in statement:
            seen.append((statement, tuple(parameters)))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as conn:
            await find_any_owner(conn, "locations", "LOC000001")
    finally:
        await engine.dispose()
    return seen


def explain_get_one(db: Path) -> list[str]:
    try:
        queries = asyncio.run(_captured_get_one(f"sqlite+aiosqlite:///{db}"))
    except (ImportError, AttributeError, TypeError) as exc:
        return [f"(find_any_owner not found: {exc!r})"]
    out = []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for sql, params in queries:
            out.append(" ".join(sql.split()))
            out += [f"  {row[-1]}" for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    return out


# --- main -----------------------------------------------------------------------------------------


def print_row(row: Row) -> None:
    target = f">= {row.target:g}" if row.target is not None else ""
    ratio = f"{row.ratio:.3f}" if row.ratio is not None else ""
    print(f"  {row.figure:<48} {row.evroam:>10} {row.baseline:>20} {ratio:>7} {target:>8} {row.verdict:<4} "
          f"{row.note}", flush=True)


def machine(when: str) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{when}: load average {load}, nproc {len(os.sched_getaffinity(0))} "
          f"(of {os.cpu_count()}), {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}", flush=True)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs and 10,000 instead of 100,000 stored: a smoke check")
    ap.add_argument("--only", default="", help=f"comma-separated figures: {', '.join(FIGURES)}")
    ap.add_argument("--duration", type=float, help="seconds per measured run (default 5, quick 2)")
    args = ap.parse_args()
    args.only = {x.strip() for x in args.only.split(",") if x.strip()} or set(FIGURES)
    unknown = args.only - set(FIGURES)
    if unknown:
        ap.error(f"unknown figure(s) {', '.join(sorted(unknown))}; one of {', '.join(FIGURES)}")
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    return args


def run_figures(b: Bench, args: argparse.Namespace, stack: contextlib.ExitStack) -> list[Pair]:
    only, pairs = args.only, []

    def pair(label: str, stored: int, db: str | None = None) -> Pair:
        t = time.perf_counter()
        p = make_pair(b.base, label, stored, db)
        stack.callback(p.stop)
        pairs.append(p)
        print(f"  set-up {label}: {stored:,} Locations ({p.seeded_by}), 2 nodes, "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        return p

    small = pair("sqlite", SMALL) if only & {"get-one", "page", "scale", "put", "patch"} else None
    if "get-one" in only:
        get_one(b, small, "GET one Location, SQLite", 0.5)
    if "get-one-pg" in only and (db := pg_database(f"evroam_bench_{os.getpid()}")):
        stack.callback(drop_pg, f"evroam_bench_{os.getpid()}")
        get_one(b, pair("pg", SMALL, db), "GET one Location, PostgreSQL", 0.3)
    if "page" in only:
        page(b, small)
    if "scale" in only:
        scale(b, small, pair("sqlite-large", 10_000 if args.quick else LARGE))
    if "put" in only:
        put(b, small)
    if "patch" in only:
        patch(b, small)
    if "push" in only:
        pg_ok = pg_database(f"evroam_bench_probe_{os.getpid()}") is not None
        drop_pg(f"evroam_bench_probe_{os.getpid()}")
        push(b, pg_ok, 1_000 if args.quick else 10_000)
    return pairs


def main() -> None:
    args = parse_args()
    machine("start")
    with tempfile.TemporaryDirectory(prefix="evroam-bench-http-") as tmp, contextlib.ExitStack() as stack:
        gen = Generator(Path(tmp))
        if not gen.wrk:
            print("WARNING: wrk is not installed (apt-get install wrk); using a small asyncio client instead."
                  " It is slower than the servers it measures, so the ratios are less trustworthy.")
        rounds = 1 if args.quick else 2
        print(f"load: {gen.name}, {args.duration:g} s per run, baseline/evroam interleaved "
              f"({rounds + 1} baseline and {rounds} evroam runs per figure, after 1 s of warm-up each)")
        print(f"  {'figure':<48} {'evroam':>10} {'baseline':>20} {'ratio':>7} {'target':>8}")
        b = Bench(Path(tmp), gen, args.duration, rounds, [])
        pairs = run_figures(b, args, stack)
        stack.close()  # stopping the servers reads their peak RSS
        print("peak RSS of the serving processes (VmHWM):")
        for p in pairs:
            for node in (p.cpo, p.emsp):
                if node.server:
                    print(f"  {node.name:<20} {node.server.rss_mb:6.0f} MB")
        for p in pairs:
            if p.cpo.db_url is None:
                print(f"EXPLAIN QUERY PLAN of the Sender GET one, SQLite, {p.stored:,} stored:")
                print("\n".join(f"  {line}" for line in explain_get_one(p.cpo.home / "evroam.db")))
    print("summary:")
    for row in b.rows:
        print_row(row)
    machine("end")


if __name__ == "__main__":
    main()
