"""Two CPO worker processes share one PostgreSQL database and deliver 1,000
changes: none lost, none doubled (issue 4). The outbox claims rows with
SELECT … FOR UPDATE SKIP LOCKED, so the workers never take the same row."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from evroam.config import NodeConfig
from evroam.node import Node
from evroam.modules.events import Received
from evroam.store import calllog
from tests.nodes import wait_for
from tests.partners import EMSP, change
from tests.services import free_port, run, wait_http


@pytest.mark.timeout(240)
async def test_two_workers_deliver_1000_changes_once(cluster, tmp_path):
    if cluster.dbs.backend != "postgresql":
        pytest.skip("several worker processes on one database need PostgreSQL (SQLite: one process)")
    port = free_port()
    home = tmp_path / "cpo"
    db = await cluster.dbs.new("cpo-shared")
    run("init", "--home", str(home), "--country", "NL", "--party", "CPO", "--role", "CPO",
        "--public-url", f"http://127.0.0.1:{port}", "--port", str(port), "--db", db)
    cfg = NodeConfig.load(home)
    cfg.run_workers = False  # HTTP only; the two workers deliver
    cfg.delivery_backoff_s, cfg.delivery_backoff_cap_s, cfg.delivery_max_attempts = 0.05, 0.5, 1000
    cfg.save()
    server = subprocess.Popen([sys.executable, "-m", "evroam", "serve", "--home", str(home)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[subprocess.Popen] = []
    try:
        wait_http(f"http://127.0.0.1:{port}/ocpi/versions")
        applied: Counter[str] = Counter()
        # No scheduled pull while the workers push: a pulled tariff fires the
        # same hook, and on a slow machine the run outlasts the initial delay.
        emsp = await cluster.node("emsp", EMSP, serve=False, pull_initial_delay_s=3600.0)

        @emsp.on(Received.TARIFF)
        async def _got(tariff, party):
            applied[tariff.id] += 1

        from evroam.node import bind_socket
        await emsp.serve_in_background(bind_socket("127.0.0.1", emsp.config.port))
        invite = json.loads(run("partners", "invite", "--home", str(home), "--name", "emsp", "--json").stdout)
        await emsp.handshake.register(invite["versions_url"], invite["token"])

        writer = Node(NodeConfig.load(home))
        await writer.start()
        try:
            for i in range(0, 1000, 100):
                async with writer.engine.begin() as conn:
                    from evroam.modules.tariffs import MODULE as TARIFFS
                    from evroam.sync.publish import publish
                    for k in range(i, i + 100):
                        await publish(conn, TARIFFS, change(k, 1000))
        finally:
            await writer.stop()
        for _ in range(2):
            workers.append(subprocess.Popen([sys.executable, "-m", "evroam", "worker", "--home", str(home)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        await wait_for(lambda: len(applied) == 1000, timeout=120, what="1,000 deliveries")
        assert set(applied.values()) == {1}
        await emsp.call_log.flush()
        puts = [r for r in await calllog.recent(emsp.engine, limit=5000) if r["method"] == "PUT"]
        assert len(puts) == 1000  # not one HTTP delivery twice
    finally:
        for p in [server, *workers]:
            p.terminate()
        for p in [server, *workers]:
            p.wait(timeout=30)
