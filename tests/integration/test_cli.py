"""The CLI contract, end to end: `evroam init`, two `evroam serve` processes,
invite, register, list, rotate, remove — all through the console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.services import EVROAM, free_port, run, wait_http


@pytest.fixture
def two_homes(tmp_path: Path):
    procs = []
    homes = {}
    for name, role, cc, pid in (("cpo", "CPO", "NL", "CPO"), ("emsp", "EMSP", "DE", "EMS")):
        port = free_port()
        home = tmp_path / name
        run("init", "--home", str(home), "--country", cc, "--party", pid, "--role", role,
            "--public-url", f"http://127.0.0.1:{port}", "--name", f"{name} ltd", "--port", str(port))
        procs.append(subprocess.Popen([*EVROAM, "serve", "--home", str(home)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
        homes[name] = (home, port)
    for _home, port in homes.values():
        wait_http(f"http://127.0.0.1:{port}/ocpi/versions")
    yield homes
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=20)


def test_cli_register_rotate_remove(two_homes):
    (cpo_home, cpo_port), (emsp_home, _) = two_homes["cpo"], two_homes["emsp"]
    invite = json.loads(run("partners", "invite", "--home", str(cpo_home), "--name", "emsp", "--json").stdout)
    assert set(invite) == {"token", "versions_url"}
    assert invite["versions_url"] == f"http://127.0.0.1:{cpo_port}/ocpi/versions"

    # EVROAM_HOME stands in for --home.
    out = run("partners", "register", "--versions-url", invite["versions_url"], "--token", invite["token"],
              env={"EVROAM_HOME": str(emsp_home)})
    assert "Registered with nl-cpo on OCPI 2.2.1" in out.stdout

    cpo_view = json.loads(run("partners", "list", "--home", str(cpo_home), "--json").stdout)
    assert [(p["name"], p["status"], p["version"]) for p in cpo_view] == [("emsp", "REGISTERED", "2.2.1")]
    assert cpo_view[0]["roles"][0]["business_details"]["name"] == "emsp ltd"
    emsp_view = json.loads(run("partners", "list", "--home", str(emsp_home), "--json").stdout)
    assert [(p["name"], p["status"]) for p in emsp_view] == [("nl-cpo", "REGISTERED")]

    assert "Rotated tokens with nl-cpo" in run("partners", "rotate", "--home", str(emsp_home), "nl-cpo").stdout
    # Token A is spent for good.
    proc = run("partners", "register", "--home", str(emsp_home), "--versions-url", invite["versions_url"],
               "--token", invite["token"], check=False)
    assert proc.returncode == 1 and "3001" in proc.stderr

    calls = json.loads(run("calls", "list", "--home", str(cpo_home), "--json", "--limit", "50").stdout)
    assert any(c["method"] == "PUT" and c["direction"] == "in" and c["http_status"] == 200 for c in calls)

    assert "Removed nl-cpo" in run("partners", "remove", "--home", str(emsp_home), "nl-cpo").stdout
    cpo_view = json.loads(run("partners", "list", "--home", str(cpo_home), "--json").stdout)
    assert cpo_view[0]["status"] == "UNREGISTERED"


def test_every_command_has_help():
    for args in (["--help"], ["init", "--help"], ["serve", "--help"], ["partners", "--help"],
                 ["partners", "invite", "--help"], ["partners", "register", "--help"], ["partners", "list", "--help"],
                 ["partners", "rotate", "--help"], ["partners", "remove", "--help"], ["calls", "list", "--help"]):
        out = run(*args).stdout
        assert "Usage" in out and len(out) > 200, args


def test_cli_errors_are_clean(tmp_path):
    proc = run("partners", "list", "--home", str(tmp_path / "nowhere"), check=False)
    assert proc.returncode == 2 and "evroam init" in proc.stderr
    proc = run("init", "--home", str(tmp_path / "x"), "--role", "CPO", "--public-url", "http://x", check=False)
    assert proc.returncode != 0 and "--country" in proc.stderr


def test_demo_runs_to_completion():
    proc = subprocess.run([*EVROAM, "demo"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "lifecycle complete" in proc.stdout
    assert "re-priced it: ACCEPTED" in proc.stdout
