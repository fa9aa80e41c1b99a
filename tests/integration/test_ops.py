"""Operations: bulk import, partners status/retry, on-demand and scheduled
pulls, the worker process, sync-lag alerts and /metrics.

CLI commands run on the nodes' databases while the nodes keep serving in this
test's event loop: `evroam data import` as a real process (no terminal), the
others through Click's runner in a thread (a process costs seconds to start)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp
import sqlalchemy as sa
from structlog.testing import capture_logs
from typer.testing import CliRunner

from evroam.cli_ops import register
from evroam.node import Node
from evroam.ocpi.tariffs import Tariff
from evroam.store.tables import outbox
from evroam.sync import importer
from evroam.sync.lag import health
from evroam.sync.scheduler import jittered, pull_modules
from tests.builders import location, tariff
from tests.nodes import wait_for
from tests.pair import admin_pair
from tests.partners import received

# The full `evroam` app, with the ops commands whether or not cli.py wires them yet.
CLI = [sys.executable, "-c", "from evroam.cli import app; from evroam.cli_ops import register; register(app); app()"]


async def cli(*args: str) -> tuple[int, str, str]:
    """`evroam ARGS` in a thread: the CLI runs its own event loop there."""
    from evroam.cli import app

    register(app)
    with capture_logs():  # the serving nodes' log lines stay out of the command's output
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


async def cli_process(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVROAM_")}
    proc = await asyncio.create_subprocess_exec(*CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def _no_rows(node) -> bool:
    return await outbox_rows(node) == 0


async def outbox_rows(node, status: str | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(outbox)
    if status:
        stmt = stmt.where(outbox.c.status == status)
    async with node.engine.connect() as conn:
        return (await conn.execute(stmt)).scalar()


async def partner_health(node, name: str):
    return next(h for h in await health(node.engine) if h.name == name)


async def test_data_import(cluster, tmp_path):
    cpo, emsp, party = await admin_pair(cluster)
    home = cpo.config.home
    cpo.config.save()
    good, single, bad = tmp_path / "good.json", tmp_path / "single.json", tmp_path / "bad.json"
    good.write_text(json.dumps([tariff("T1"), tariff("T2"), tariff("T3")]))
    single.write_text(json.dumps(tariff("T4")))
    broken = tariff("T11")
    broken["elements"][0]["price_components"][0]["type"] = "energy"
    bad.write_text(json.dumps([tariff("T10"), broken, tariff("T12")]))

    rc, out, err = await cli_process("data", "import", "--home", str(home), "--module", "tariffs", str(good),
                                     str(single), str(bad))
    assert rc == 1, (out, err)
    assert f"ok     {good}: 3 objects (3 created, 0 updated, 0 unchanged)" in out
    assert f"ok     {single}: 1 objects (1 created" in out
    assert f"FAILED {bad}: nothing written (1 errors)" in out
    assert f"{bad}[1]: elements.0.price_components.0.type: " in err
    # Not a terminal: the progress display leaves no control sequences behind.
    assert "\x1b[" not in out + err and "Traceback" not in err
    for tid in ("T1", "T2", "T3", "T4"):
        assert await received(cpo, 0, "tariffs", tid) is not None
    for tid in ("T10", "T11", "T12"):
        assert await received(cpo, 0, "tariffs", tid) is None  # nothing of the failed file

    async def all_pushed() -> bool:
        return all([await received(emsp, party.id, "tariffs", t) for t in ("T1", "T2", "T3", "T4")])

    await wait_for(all_pushed, what="imported tariffs pushed to the eMSP")

    # Importing the same file again changes nothing and pushes nothing.
    rc, out, err = await cli("data", "import", "--home", str(home), "--module", "tariffs", str(good))
    assert rc == 0, err
    assert "3 objects (0 created, 0 updated, 3 unchanged)" in out and "0 objects queued" in out
    assert await outbox_rows(cpo) == 0

    rc, _, err = await cli("data", "import", "--home", str(home), "--module", "chargers", str(good))
    assert rc == 2 and "--module" in err


async def test_import_rules_and_thousands_of_locations(cluster, tmp_path):
    cpo, emsp, party = await admin_pair(cluster, cpo_settings={"run_workers": False})
    await cpo.stop_workers()
    n = 3000
    big = tmp_path / "locations.json"
    big.write_text(json.dumps([location(f"L{i}") for i in range(n)]))
    loaded: list[int] = []
    written: list[int] = []
    started = time.perf_counter()
    (report,) = await importer.import_files(cpo.engine, "locations", [big], cpo.config.roles,
                                            on_loaded=lambda _p, k: loaded.append(k), on_written=written.append)
    elapsed = time.perf_counter() - started
    assert report.ok and (report.created, sum(written), loaded) == (n, n, [n])
    assert await outbox_rows(cpo, "PENDING") == n  # one PUT per location for the one receiving partner
    assert elapsed < 15, f"{n} locations took {elapsed:.1f}s"  # about 1 s here; per-object publish() took 20
    # Changes to some of them: updated in place, folded into the pending PUTs.
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps([location("L1", updated="2026-02-01T00:00:00Z"), location("L2"),
                                   location(f"L{n}")]))
    (report,) = await importer.import_files(cpo.engine, "locations", [changed], cpo.config.roles)
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    assert await outbox_rows(cpo, "PENDING") == n + 1
    assert (await received(cpo, 0, "locations", "L1"))["last_updated"] == "2026-02-01T00:00:00Z"

    # Refusals found while writing also leave the whole file unwritten.
    older = tmp_path / "older.json"
    older.write_text(json.dumps([location("L_NEW"), location("L1", updated="2020-01-01T00:00:00Z")]))
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps([location("L_NEW"), location("l_new")]))
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({**location("L_NEW"), "country_code": "BE"}))
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    twin_evse = location("L_NEW")
    twin_evse["evses"].append({**twin_evse["evses"][0], "uid": "e1"})
    twins = tmp_path / "twins.json"
    twins.write_text(json.dumps([twin_evse]))
    reports = await importer.import_files(cpo.engine, "locations", [older, dup, foreign, broken, twins],
                                          cpo.config.roles)
    assert [r.ok for r in reports] == [False] * 5
    assert "older.json[1]: last_updated: 2020-01-01T00:00:00Z is older" in reports[0].errors[0]
    assert "dup.json[1]: same object as [0]" in reports[1].errors[0]
    assert "foreign.json[0]: country_code/party_id: BE/CPO is not one of this node's CPO roles" in reports[2].errors[0]
    assert "broken.json: not valid JSON" in reports[3].errors[0]
    assert "twins.json[0]: evses.1.uid: 'e1' appears twice" in reports[4].errors[0]
    assert await received(cpo, 0, "locations", "L_NEW") is None


async def test_partners_status_and_retry(cluster):
    cpo, emsp, party = await admin_pair(cluster, cpo_settings={"delivery_max_attempts": 1, "delivery_backoff_s": 0.01})
    cpo.config.save()
    await emsp.stop()  # the partner is down: the one attempt fails and the delivery is dead-lettered
    await cpo.publish("tariffs", Tariff.from_wire(tariff("T1")))

    async def dead() -> bool:
        return (await partner_health(cpo, "emsp")).dead == 1

    await wait_for(dead, what="a dead letter")
    rc, out, err = await cli("partners", "status", "--home", str(cpo.config.home), "--json")
    assert rc == 0, err
    (row,) = json.loads(out)
    assert (row["name"], row["status"], row["pending"], row["dead"], row["lag_s"]) == ("emsp", "REGISTERED", 0, 1, 0)

    emsp = await cluster.restart(emsp)
    rc, out, err = await cli("partners", "retry", "--home", str(cpo.config.home), "emsp")
    assert (rc, out.strip()) == (0, "1 dead deliveries back in line for emsp"), err
    await wait_for(lambda: received(emsp, party.id, "tariffs", "T1"), what="the retried delivery")
    # The row goes once the partner's answer is back and the batch commits.
    await wait_for(lambda: _no_rows(cpo), what="the outbox to drain")
    rc, _, err = await cli("partners", "retry", "--home", str(cpo.config.home), "nobody")
    assert rc == 1 and "no partner named 'nobody'" in err


async def test_sync_pull_cli(cluster):
    cpo, emsp, party = await admin_pair(cluster, cpo_settings={"run_workers": False})
    for tid in ("T1", "T2", "T3"):
        await cpo.publish("tariffs", Tariff.from_wire(tariff(tid)))
    emsp.config.save()
    home = str(emsp.config.home)
    rc, out, err = await cli("sync", "pull", "--home", home, "nl-cpo", "--json")
    assert rc == 0, err
    results = {r["module"]: r for r in json.loads(out)}
    assert "tariffs" in results and "tokens" not in results  # the CPO sends no tokens to us
    assert (results["tariffs"]["stored"], results["tariffs"]["full"], results["tariffs"]["error"]) == (3, False, None)
    assert await received(emsp, party.id, "tariffs", "T3") is not None

    rc, out, err = await cli("sync", "pull", "--home", home, "nl-cpo", "tariffs", "--full")
    assert rc == 0, err
    assert "Pulled from nl-cpo" in out and "tariffs" in out and "full" in out

    rc, out, err = await cli("partners", "status", "--home", home)
    assert rc == 0, err
    assert "nl-cpo" in out and "tariffs:" in out and "ok (3)" in out

    rc, _, err = await cli("sync", "pull", "--home", home, "nobody")
    assert rc == 1 and "no partner named 'nobody'" in err


async def test_worker_delivers_without_http(cluster):
    from evroam.cli_ops import run_worker

    cpo, emsp, party = await admin_pair(cluster, cpo_settings={"run_workers": False})
    await cpo.publish("tariffs", Tariff.from_wire(tariff("T1")))
    assert await outbox_rows(cpo, "PENDING") == 1  # nothing delivers in the serving process
    worker = Node(cpo.config)  # as `evroam worker` would, on the same database
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(worker, stop))
    try:
        await wait_for(lambda: received(emsp, party.id, "tariffs", "T1"), what="delivery by the worker")
        await wait_for(lambda: worker.delivery.delivered == 1, what="the delivery completed")
        assert worker._server is None  # no HTTP in the worker
    finally:
        stop.set()
        await task
        await worker.stop()
    assert await outbox_rows(cpo) == 0


async def test_scheduled_pulls(cluster):
    # No pushes from the CPO: whatever the eMSP gets, it pulled.
    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO")], run_workers=False)
    emsp = await cluster.node("emsp", [("EMSP", "DE", "EMS")], pull_interval_s=0.3, full_pull_interval_s=0.9,
                              pull_initial_delay_s=0)
    await cpo.publish("tariffs", Tariff.from_wire(tariff("T1")))
    token_a, versions_url = await cpo.handshake.invite("emsp")
    party = await emsp.handshake.register(versions_url, token_a)
    assert "tariffs" in pull_modules(party, [r.role for r in emsp.config.roles])
    assert "tokens" not in pull_modules(party, [r.role for r in emsp.config.roles])

    def pulled(kind: bool | None = None) -> list:
        return [r for name, r in emsp.scheduler.results
                if name == "nl-cpo" and r.module == "tariffs" and kind in (None, r.full)]

    await wait_for(pulled, what="the first scheduled pull")
    assert pulled()[0].full and pulled()[0].stored == 1  # a new partner's first pull is a full one
    assert await received(emsp, party.id, "tariffs", "T1") is not None
    await cpo.publish("tariffs", Tariff.from_wire(tariff("T2", updated="2099-01-01T00:00:00Z")))
    await wait_for(lambda: received(emsp, party.id, "tariffs", "T2"), what="a later scheduled delta pull")

    await wait_for(lambda: len(pulled(True)) >= 2 and pulled(False), what="delta and daily (here: 0.9 s) full pulls")
    assert all(r.error is None for _, r in emsp.scheduler.results)
    assert all(90 <= jittered(100) <= 110 for _ in range(1000))


async def test_lag_alert_gauges_and_metrics(cluster):
    cpo, emsp, party = await admin_pair(cluster, cpo_settings={
        "lag_alert_s": 0.3, "lag_check_s": 0.05, "metrics": True, "delivery_backoff_s": 0.05,
        # Many attempts: with the default 12 the row would be dead-lettered
        # (and leave the pending lag) within about a second on a slow machine.
        "delivery_backoff_cap_s": 0.2, "delivery_max_attempts": 10_000})

    def sample(name: str) -> float | None:
        return cpo.metrics_registry.get_sample_value(name, {"partner": "emsp"})

    await wait_for(lambda: sample("evroam_sync_lag_seconds") == 0, what="a zero lag series")
    with capture_logs() as logs:
        await emsp.stop()
        await cpo.publish("tariffs", Tariff.from_wire(tariff("T1")))

        def alerts(event: str) -> list[dict]:
            return [e for e in logs if e["event"] == event and e.get("partner") == "emsp"]

        await wait_for(lambda: alerts("sync.lag_alert"), what="the lag alert")
        (alert,) = alerts("sync.lag_alert")
        assert alert["log_level"] == "warning" and alert["pending"] == 1
        assert alert["lag_s"] >= alert["threshold_s"] == 0.3  # the log rounds to 0.1 s
        assert sample("evroam_sync_lag_seconds") > 0.3 and sample("evroam_outbox_pending") == 1
        async with aiohttp.ClientSession() as s, s.get(f"{cpo.config.public_url}/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
        assert 'evroam_outbox_pending{partner="emsp"} 1.0' in text
        assert 'evroam_outbox_dead{partner="emsp"} 0.0' in text
        lag_line = next(line for line in text.splitlines() if line.startswith('evroam_sync_lag_seconds{partner="emsp"}'))
        assert float(lag_line.split()[-1]) > 0.3

        emsp = await cluster.restart(emsp)
        await wait_for(lambda: alerts("sync.lag_recovered"), what="the recovery line")
        assert len(alerts("sync.lag_alert")) == 1  # once per crossing, not once per check
    assert sample("evroam_sync_lag_seconds") == 0 and sample("evroam_outbox_pending") == 0
    assert await received(emsp, party.id, "tariffs", "T1") is not None
    # /metrics is opt-in.
    async with aiohttp.ClientSession() as s, s.get(f"{emsp.config.public_url}/metrics") as r:
        assert r.status == 404
