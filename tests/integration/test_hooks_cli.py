"""Hooks from the command line (issue 8, 5.5): `evroam serve --hooks MODULE`
and `hooks = "MODULE"` in evroam.toml load a module whose setup(node)
registers hooks. A real `evroam serve` process runs the shipped example
(examples/cpo_hooks.py) as CPO; an in-process eMSP sends it commands through
its admin API."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from evroam.config import NodeConfig
from evroam.ocpi.tariffs import Tariff
from tests.builders import evse, location, token
from tests.builders import tariff as tariff_doc
from tests.from_outside import ADMIN_TOKEN, REPO, admin, init_listening, serving
from tests.nodes import bind_loopback, wait_for
from tests.services import evroam

EMSP = [("EMSP", "DE", "EMS")]


async def registered(cluster, home: Path, url: str):
    """The eMSP node, registered with the CPO process at `url` (known to it as "cpo"), and LOC1 published."""
    emsp = await cluster.node("emsp", EMSP, admin_token=ADMIN_TOKEN)
    invite = evroam("partners", "invite", "--home", str(home), "--name", "emsp", "--json")
    assert invite.returncode == 0, invite.stderr
    doc = json.loads(invite.stdout)
    await emsp.handshake.register(doc["versions_url"], doc["token"], name="cpo")
    status, body = await admin(url, "PUT", "/locations/LOC1", location(evses=[evse(evse_id="NL*CPO*E1")]))
    assert (status, body["status_code"]) == (201, 1000)
    return emsp


async def command(emsp, command_type: str, body: dict) -> dict:
    """Send a command through the eMSP's admin API and wait for its result."""
    base = emsp.config.public_url
    status, sent = await admin(base, "POST", f"/commands/cpo/{command_type}", body)
    assert (status, sent["status_code"], sent["data"]["response"]) == (201, 1000, "ACCEPTED"), sent
    uid = sent["data"]["id"]
    seen: dict = {}

    async def done() -> bool:
        _, doc = await admin(base, "GET", f"/commands/{uid}")
        seen.update(doc["data"])
        return doc["data"]["result"] is not None

    await wait_for(done, timeout=20, what=f"the result of {command_type}")
    return seen


async def sessions_at(emsp) -> list[dict]:
    _, doc = await admin(emsp.config.public_url, "GET", "/partners/cpo/sessions")
    return doc["data"]


async def test_serve_hooks_runs_a_remote_start_on_a_simulated_charger(cluster, tmp_path):
    home = tmp_path / "cpo"
    url = init_listening(home, "CPO", "NL", "CPO", await cluster.dbs.new("cpo"))
    async with serving(home, url, "--hooks", "examples.cpo_hooks", env={"CPO_BACKEND_URL": ""}):
        emsp = await registered(cluster, home, url)
        start = await command(emsp, "START_SESSION", {"token": token(), "location_id": "LOC1",
                                                      "authorization_reference": "REF-1"})
        assert (start["state"], start["result"], start["timeout"]) == ("COMPLETED", "ACCEPTED", 30)

        async def active() -> bool:
            return len(await sessions_at(emsp)) == 1

        await wait_for(active, what="the started session at the eMSP")
        (session,) = await sessions_at(emsp)
        assert (session["status"], session["location_id"], session["evse_uid"], session["connector_id"],
                session["authorization_reference"], session["auth_method"], session["cdr_token"]["uid"]) == (
            "ACTIVE", "LOC1", "E1", "1", "REF-1", "COMMAND", "APP-42")

        stop = await command(emsp, "STOP_SESSION", {"session_id": session["id"]})
        assert (stop["state"], stop["result"]) == ("COMPLETED", "ACCEPTED")

        async def completed() -> bool:
            return [s["status"] for s in await sessions_at(emsp)] == ["COMPLETED"]

        await wait_for(completed, what="the session COMPLETED at the eMSP")
        # No hook for it in the example: the spec's answer.
        status, sent = await admin(emsp.config.public_url, "POST", "/commands/cpo/CANCEL_RESERVATION",
                                   {"reservation_id": "R1"})
        assert (status, sent["data"]["response"]) == (201, "NOT_SUPPORTED")


class FakeBackend:
    """The operator's own charging system: records what it is POSTed and
    answers with the next scripted reply."""

    def __init__(self, replies: list[tuple[int, object]]) -> None:
        self.replies = replies
        self.received: list[dict] = []
        self.sock = bind_loopback()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/ocpi-commands"

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        status, reply = self.replies.pop(0)
        return web.json_response(reply, status=status)

    async def __aenter__(self) -> FakeBackend:
        app = web.Application()
        app.router.add_post("/ocpi-commands", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


async def test_hooks_from_evroam_toml_ask_the_operators_backend(cluster, tmp_path):
    home = tmp_path / "cpo"
    url = init_listening(home, "CPO", "NL", "CPO", await cluster.dbs.new("cpo"))
    # The operator's copy of the example in the node's home, named by evroam.toml.
    shutil.copy(REPO / "examples" / "cpo_hooks.py", home / "my_hooks.py")
    with (home / "evroam.toml").open("a") as f:
        f.write('hooks = "my_hooks.py"\n')
    replies = [(200, {"result": "ACCEPTED"}), (200, {"result": "EVSE_OCCUPIED", "message": "cable stuck"}),
               (503, {"detail": "down"})]
    async with FakeBackend(replies) as backend, serving(home, url, env={"CPO_BACKEND_URL": backend.url},
                                                        cwd=tmp_path):
        emsp = await registered(cluster, home, url)
        start = await command(emsp, "START_SESSION", {"token": token(), "location_id": "LOC1"})
        assert (start["state"], start["result"]) == ("COMPLETED", "ACCEPTED")
        (asked,) = backend.received
        assert (asked["command"], asked["partner"], asked["request"]["location_id"],
                asked["request"]["token"]["uid"]) == ("START_SESSION", "emsp", "LOC1", "APP-42")
        assert asked["request"]["response_url"].startswith(emsp.config.public_url)
        # The backend's answer is the result the eMSP gets, message included.
        busy = await command(emsp, "START_SESSION", {"token": token(), "location_id": "LOC1"})
        assert (busy["result"], busy["result_data"]) == (
            "EVSE_OCCUPIED", {"result": "EVSE_OCCUPIED", "message": [{"language": "en", "text": "cable stuck"}]})
        down = await command(emsp, "UNLOCK_CONNECTOR", {"location_id": "LOC1", "evse_uid": "E1",
                                                        "connector_id": "1"})
        assert down["result"] == "FAILED"
        assert "HTTP 503" in down["result_data"]["message"][0]["text"]
        # With a backend, sessions are the backend's to create (admin API): none was.
        assert await sessions_at(emsp) == []


BROKEN = {
    "no_setup.py": "HOOKS = []\n",
    "raises.py": "raise RuntimeError('boom')\n",
    "bad_setup.py": "def setup(node):\n    raise ValueError('no backend configured')\n",
    "async_setup.py": "async def setup(node):\n    pass\n",
}


def load_failure(stderr: str) -> str:
    """The one JSON line a process prints when its hooks cannot be used: its error."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    line = json.loads(lines[0])
    assert (line["level"], line["event"]) == ("error", "hooks.load_failed"), line
    return line["error"]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_hooks_module_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, command):
    home = tmp_path / "node"
    init_listening(home, "CPO", "NL", "CPO")
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    cases = {
        "nosuch.module": "hooks module 'nosuch.module' not found (a dotted module name, or a path ending in .py)",
        "missing.py": f"hooks file '{tmp_path / 'missing.py'}' not found",
        "no_setup.py": "hooks module 'no_setup.py' has no setup(node) function",
        "raises": "hooks module 'raises' failed to import: RuntimeError: boom",
        "bad_setup.py": "setup() of hooks module 'bad_setup.py' failed: ValueError: no backend configured",
        "async_setup": "setup() of hooks module 'async_setup' must be a plain function, not async",
    }
    if command == "worker":  # the same loader: one case shows it is used
        cases = {k: cases[k] for k in ("raises",)}
    for spec, message in cases.items():
        done = evroam(command, "--home", str(home), "--hooks", spec, cwd=tmp_path)
        assert (done.returncode, load_failure(done.stderr), done.stdout) == (2, message, ""), spec
    # From evroam.toml, a path is relative to the home folder.
    with (home / "evroam.toml").open("a") as f:
        f.write('hooks = "no_setup.py"\n')
    done = evroam(command, "--home", str(home), cwd=tmp_path)
    assert (done.returncode, load_failure(done.stderr)) == (2, f"hooks file '{home / 'no_setup.py'}' not found")


RECORDER = '''
import os
from pathlib import Path

from evroam.modules.events import Received


def setup(node):
    @node.on(Received.TARIFF)
    async def got(tariff, party):
        with Path(os.environ["RECEIVED_LOG"]).open("a") as f:
            f.write(f"{os.getpid()} {party.name} {tariff.id}\\n")
'''


async def test_worker_hooks_hear_what_its_scheduled_pulls_bring(cluster, tmp_path):
    """Received hooks fire where the object arrives: a push in `serve`, a
    scheduled pull in `worker` (run_workers = false), so the worker loads them too."""
    cpo = await cluster.node("cpo", [("CPO", "NL", "CPO")])
    await cpo.publish("tariffs", Tariff.from_wire(tariff_doc()))  # before registering: nothing is pushed
    home = tmp_path / "emsp"
    url = init_listening(home, "EMSP", "DE", "EMS", await cluster.dbs.new("emsp"))
    (home / "recorder.py").write_text(RECORDER)
    cfg = NodeConfig.load(home)
    cfg.run_workers, cfg.pull_initial_delay_s, cfg.hooks = False, 0.1, "recorder.py"
    cfg.save()
    log_file = tmp_path / "received.log"
    env = {"RECEIVED_LOG": str(log_file)}
    async with serving(home, url, env=env) as server:
        token_a, versions_url = await cpo.handshake.invite("emsp")
        done = await asyncio.to_thread(evroam, "partners", "register", "--home", str(home), "--versions-url",
                                       versions_url, "--token", token_a, "--name", "cpo")
        assert done.returncode == 0, done.stderr
        worker = subprocess.Popen([sys.executable, "-m", "evroam", "worker", "--home", str(home)],
                                  env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_for(lambda: log_file.is_file() and log_file.read_text(), timeout=30,
                           what="the worker's Received.TARIFF hook")
            (line,) = log_file.read_text().splitlines()
            assert line == f"{worker.pid} cpo T1"
            assert server.pid != worker.pid
        finally:
            worker.terminate()
            await asyncio.to_thread(worker.wait, 30)
