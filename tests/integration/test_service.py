"""A node that behaves like a service (issue 8, part 5): real `evroam serve`,
`evroam worker`, `evroam init` and `evroam demo` processes, as Docker,
Kubernetes or systemd would run them."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from evroam.config import NodeConfig
from evroam.ocpi.tariffs import Tariff
from evroam.store import calllog
from evroam.store.db import create_engine, head_revision
from tests.nodes import bind_loopback, wait_for
from tests.services import Service, evroam, get, init_home, serve

REPO = Path(__file__).resolve().parents[2]
Z_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def held_port() -> tuple[object, int]:
    """A port some other process listens on."""
    sock = bind_loopback()
    return sock, sock.getsockname()[1]


def assert_all_json(svc: Service) -> list[dict]:
    """Every line the process wrote, on either stream, is one JSON object
    with a `Z` timestamp, a level and an event."""
    assert svc.lines, "the process wrote nothing"
    docs = []
    for stream, text in svc.lines:
        try:
            doc = json.loads(text)
        except ValueError:
            raise AssertionError(f"not JSON on {stream}: {text!r}\n{svc.text()}") from None
        assert isinstance(doc, dict) and Z_TIMESTAMP.match(doc.get("timestamp", "")), (stream, text)
        assert doc["level"] in ("debug", "info", "warning", "error", "critical") and doc["event"], text
        docs.append(doc)
    return docs


# --- 5.1 SIGTERM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_on_sigterm_like_sigint_logs_it_and_exits_0(tmp_path, sig):
    home = init_home(tmp_path / "cpo")
    svc, base = serve(home)
    with svc:
        assert get(f"{base}/health") == (200, {"status": "ok"})
        assert svc.stop(sig) == 0, svc.text()
    events = svc.events()
    assert [e["event"] for e in events][-1] == "serve.stopped", svc.text()
    assert {"event": "signal.received", "signal": sig.name}.items() <= next(
        e for e in events if e["event"] == "signal.received").items()
    # Drained: uvicorn shut down before the node said it stopped.
    names = [e["event"] for e in events]
    assert names.index("Shutting down") < names.index("serve.stopped")


def test_worker_stops_on_sigterm_and_exits_0(tmp_path):
    home = init_home(tmp_path / "cpo")
    with Service("worker", "--home", str(home)) as svc:
        svc.wait_event("worker.started")
        assert svc.stop() == 0, svc.text()
    assert svc.events()[-1]["event"] == "worker.stopped"


# --- 5.2 a port already in use -----------------------------------------------------------------------


def test_serve_on_a_port_in_use_says_so_in_one_line_and_exits_1(tmp_path):
    home = init_home(tmp_path / "cpo")
    sock, port = held_port()
    try:
        proc = evroam("serve", "--home", str(home), "--port", str(port))
    finally:
        sock.close()
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = json.loads(lines[0])
    assert {k: line[k] for k in ("level", "event", "host", "port", "error")} == {
        "level": "error", "event": "serve.bind_failed", "host": "127.0.0.1", "port": port,
        "error": "Address already in use"}


# --- 5.3 /health and /ready -----------------------------------------------------------------------------


async def test_health_and_ready_without_a_token_and_not_in_the_call_log(cluster, tmp_path):
    db = await cluster.dbs.new("svc")
    home = init_home(tmp_path / "cpo", "--db", db)
    svc, base = serve(home)
    engine = create_engine(db)
    try:
        with svc:
            assert get(f"{base}/health") == (200, {"status": "ok"})
            assert get(f"{base}/health/") == (200, {"status": "ok"})
            assert get(f"{base}/ready") == (200, {"status": "ready", "database": "ok",
                                                 "migration": head_revision()})
            # An OCPI call after the probes: once it is in the call log, the
            # probes would be too, had they been logged.
            status, body = get(f"{base}/ocpi/versions")
            assert (status, body["status_code"]) == (401, 2000)

            async def versions_logged() -> bool:
                return any(r["url"] == "/ocpi/versions" for r in await calllog.recent(engine, limit=50))

            await wait_for(versions_logged, timeout=30, what="the versions call in the call log")
            assert [r["url"] for r in await calllog.recent(engine, limit=50)] == ["/ocpi/versions"]

            # Migrations behind (a database an older release left, or a
            # rollback): not ready, and the body says which migration.
            async with engine.begin() as conn:
                await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
            assert get(f"{base}/ready") == (503, {"status": "not_ready", "database": "ok", "migration": "0001",
                                                 "expected_migration": head_revision()})
            assert get(f"{base}/health") == (200, {"status": "ok"})  # up, though not ready
            svc.wait_event("node.not_ready", migration="0001")
            assert svc.stop() == 0
    finally:
        await engine.dispose()


async def test_ready_is_503_when_the_database_does_not_answer(cluster, tmp_path):
    if cluster.dbs.backend != "postgresql":
        pytest.skip("an embedded SQLite file cannot stop answering while the process holds it open")
    import asyncpg

    from tests.nodes import PG_ADMIN_DSN

    db = await cluster.dbs.new("svc")
    home = init_home(tmp_path / "cpo", "--db", db)
    svc, base = serve(home)
    with svc:
        assert get(f"{base}/ready")[0] == 200
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE "{db.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await conn.close()
        status, body = get(f"{base}/ready")
        assert status == 503 and set(body) == {"status", "database", "error"}, body
        assert (body["status"], body["database"]) == ("not_ready", "unreachable")
        assert re.fullmatch(r"[A-Za-z]+|timed out", body["error"]), body
        assert get(f"{base}/health") == (200, {"status": "ok"})
        svc.stop()


# --- 5.4 init on an existing home ----------------------------------------------------------------------


def test_init_refuses_an_existing_home_without_force(tmp_path):
    home = init_home(tmp_path / "node", country="DE", party="XYZ")
    before = (home / "evroam.toml").read_bytes()
    again = ("init", "--home", str(home), "--country", "FR", "--party", "NEW", "--role", "CPO",
             "--public-url", "http://127.0.0.1:1")
    proc = evroam(*again)
    assert proc.returncode == 1
    assert proc.stderr == (f"{home / 'evroam.toml'} exists: this home already holds a node (CPO DE/XYZ). "
                           "Give --force to overwrite its configuration.\n")
    assert (home / "evroam.toml").read_bytes() == before

    proc = evroam(*again, "--force")
    assert proc.returncode == 0, proc.stderr
    assert [(r.country_code, r.party_id) for r in NodeConfig.load(home).roles] == [("FR", "NEW")]


# --- 5.7 logs --------------------------------------------------------------------------------------------


def test_every_line_of_serve_is_json_with_z_timestamps_and_an_access_log(tmp_path):
    home = init_home(tmp_path / "cpo")
    svc, base = serve(home, "--access-log")
    with svc:
        get(f"{base}/ocpi/versions?x=1")
        get(f"{base}/health")
        svc.wait_event("http.access", path="/ocpi/versions?x=1")
        assert svc.stop() == 0
    docs = assert_all_json(svc)
    loggers = {d["logger"] for d in docs}
    # The libraries' own lines, not just ours.
    assert {"alembic.runtime.migration", "uvicorn.error", "evroam.node"} <= loggers, loggers
    access = [d for d in docs if d["event"] == "http.access"]
    assert [(a["method"], a["path"], a["status"], a["partner"]) for a in access] == [
        ("GET", "/ocpi/versions?x=1", 401, None)]  # probes are left out
    assert isinstance(access[0]["duration_ms"], float) and access[0]["request_id"]


def test_every_line_of_worker_is_json_even_at_debug(tmp_path):
    home = init_home(tmp_path / "cpo")
    with Service("worker", "--home", str(home), "--log-level", "debug") as svc:
        svc.wait_event("worker.started")
        assert svc.stop() == 0
    docs = assert_all_json(svc)
    assert any(d["level"] == "debug" for d in docs)
    assert {"alembic.runtime.migration", "evroam.cli_ops"} <= {d["logger"] for d in docs}


async def test_log_level_and_access_log_from_the_config_file_and_the_option(tmp_path):
    home = init_home(tmp_path / "cpo")
    cfg = NodeConfig.load(home)
    cfg.log_level, cfg.access_log = "warning", True
    cfg.save()
    # At warning, a clean start and stop says nothing at all; wait on /health.
    sock, port = held_port()
    sock.close()
    with Service("serve", "--home", str(home), "--port", str(port)) as svc:
        base = f"http://127.0.0.1:{port}"

        async def up() -> bool:
            try:
                return get(f"{base}/health", timeout=1)[0] == 200
            except OSError:
                return False

        await wait_for(up, timeout=60, what="/health")
        get(f"{base}/ocpi/versions")
        assert svc.stop() == 0
    assert svc.lines == []

    # The option wins over the file; the file's access_log = true holds.
    svc, base = serve(home, "--log-level", "info")
    with svc:
        get(f"{base}/ocpi/versions")
        svc.wait_event("http.access", path="/ocpi/versions")
        svc.stop()

    proc = evroam("worker", "--home", str(home), "--log-level", "loud")
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert json.loads(line)["event"] == "config.bad_log_level" and "'loud'" in json.loads(line)["error"]


def test_serve_without_access_log_logs_no_requests(tmp_path):
    home = init_home(tmp_path / "cpo")
    svc, base = serve(home)
    with svc:
        get(f"{base}/ocpi/versions")
        svc.stop()
    assert "http.access" not in [e["event"] for e in svc.events()]


async def test_events_name_partners_not_database_ids(cluster):
    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO")], delivery_backoff_s=30.0)
    emsp = await cluster.node("emsp", [("EMSP", "DE", "EMS")])
    token_a, versions_url = await cpo.handshake.invite("acme-emsp")
    at_emsp = await emsp.handshake.register(versions_url, token_a)
    token = {"country_code": "DE", "party_id": "EMS", "uid": "U1", "type": "RFID", "contract_id": "DE-EMS-C1",
             "issuer": "x", "valid": True, "whitelist": "ALLOWED", "last_updated": "2026-01-01T00:00:00Z",
             "x_unknown": 1}
    url = at_emsp.endpoint_url("tokens", "RECEIVER").rstrip("/") + "/DE/EMS/U1"
    with structlog.testing.capture_logs() as logs:
        result = await emsp.client.request("PUT", url, at_emsp.token_out, content=json.dumps(token).encode(),
                                           params={"type": "RFID"})
        assert result.status_code == 1000
        await emsp.stop()  # the CPO's next push to it fails
        await cpo.publish("tariffs", Tariff.from_wire({
            "country_code": "NL", "party_id": "CPO", "id": "T1", "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
            "last_updated": "2026-01-01T00:00:00Z"}))
        await wait_for(lambda: any(e["event"] == "delivery.failed" for e in logs), timeout=30,
                       what="the failed delivery")
    unknown = next(e for e in logs if e["event"] == "ocpi.unknown_fields_ignored")
    failed = next(e for e in logs if e["event"] == "delivery.failed")
    assert (unknown["partner"], failed["partner"]) == ("acme-emsp", "acme-emsp")
    assert "party_id" not in unknown and "party_id" not in failed


def test_tables_on_a_pipe_are_not_cut_at_80_columns(tmp_path):
    home = init_home(tmp_path / "cpo")
    name = "a-partner-with-a-name-long-enough-that-an-80-column-table-would-have-to-wrap-or-cut-it-somewhere"
    assert evroam("partners", "invite", "--home", str(home), "--name", name).returncode == 0
    proc = evroam("partners", "list", "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    assert any(name in line and "INVITED" in line for line in proc.stdout.splitlines()), proc.stdout


# --- 5.9 the demo's ports ----------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_demo_on_given_ports(tmp_path):
    socks = [bind_loopback(), bind_loopback()]
    cpo_port, emsp_port = (s.getsockname()[1] for s in socks)
    for s in socks:
        s.close()
    proc = evroam("demo", "--cpo-port", str(cpo_port), "--emsp-port", str(emsp_port), timeout=200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"CPO  at http://127.0.0.1:{cpo_port}/ocpi/versions" in proc.stdout
    assert f"eMSP at http://127.0.0.1:{emsp_port}/ocpi/versions" in proc.stdout
    assert "lifecycle complete" in proc.stdout


def test_demo_on_a_port_in_use_says_so_in_one_line():
    sock, port = held_port()
    try:
        proc = evroam("demo", "--emsp-port", str(port))
    finally:
        sock.close()
    assert proc.returncode == 1
    assert proc.stdout == f"demo: the eMSP cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_make_demo_passes_demo_args_through():
    def dry_run(*args: str) -> list[str]:
        out = subprocess.run(["make", "-n", "demo", *args], cwd=REPO, capture_output=True, text=True, check=True)
        return [line for line in out.stdout.splitlines() if "evroam demo" in line]

    assert dry_run() == [".venv/bin/evroam demo "]
    assert dry_run("DEMO_ARGS=--cpo-port 9001 --emsp-port 9002") == [
        ".venv/bin/evroam demo --cpo-port 9001 --emsp-port 9002"]
