"""The network demo (`make demo`, second part): a Hub, two CPOs and two
eMSPs as real nodes, run as `python -m evroam.demo.network` to its end."""

from __future__ import annotations

import os
import subprocess
import sys

from evroam.demo.network import NEEDS_BEHIND_HUB

# Each step's timeline line, by the NEEDS_BEHIND_HUB name that gates it (None: always on).
LINES = {
    None: [
        "cpo1  registered with the Hub as NL/CP1 (Utrecht Charging), OCPI 2.2.1",
        "cpo2  registered with the Hub as BE/CP2 (Gent Laadpalen), OCPI 2.2.1",
        "emsp1  registered with the Hub as DE/EM1 (Berlin Mobility), OCPI 2.2.1",
        "emsp2  registered with the Hub as FR/EM2 (Paris Recharge), OCPI 2.2.1",
        "hub  pushed HubClientInfo of each newcomer to the parties already connected: FR/EM2 CONNECTED at all",
        "emsp1  GET All Locations through the Hub: 2 merged from both CPOs: BE/CP2/GENT-SP, NL/CP1/UTRECHT-CS",
        "emsp2  GET All Locations through the Hub: 2 merged from both CPOs: BE/CP2/GENT-SP, NL/CP1/UTRECHT-CS",
        "emsp1  broadcasts token APP-0001 (PUT, TO = the Hub)",
        "cpo1  received token APP-0001 from the Hub",
        "cpo2  received token APP-0001 from the Hub",
        "cpo1  goes offline (its node stops)",
        "hub  liveness check: NL/CP1 does not answer: OFFLINE, pushed to every party",
        "demo  emsp1, emsp2 and cpo2 see NL/CP1 OFFLINE in HubClientInfo",
        "cpo1  comes back on the same port",
        "hub  liveness check: NL/CP1 answers again: CONNECTED",
        "demo  emsp1, emsp2 and cpo2 see NL/CP1 CONNECTED in HubClientInfo",
        "demo  network demo complete",
    ],
    "pull-per-owner": ["emsp1  pulled the Locations of each CPO through the Hub: 2 stored"],
    "start-session": ["emsp1  START_SESSION to BE/CP2 through the Hub: response ACCEPTED, result ACCEPTED"],
    "session-and-cdr": ["emsp1  received the CDR through the Hub and re-priced it: ACCEPTED"],
}


def test_the_network_demo_runs_every_enabled_step_and_exits_0():
    proc = subprocess.run([sys.executable, "-m", "evroam.demo.network"], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Each line without its clock ("  3.41s  "), padding collapsed.
    timeline = [" ".join(line.split()[1:]) for line in proc.stdout.splitlines() if line.strip()]
    for step, lines in LINES.items():
        for line in lines:
            want = " ".join(line.split())
            if step is None or step not in NEEDS_BEHIND_HUB:
                assert want in timeline, f"{want!r} missing from:\n{proc.stdout}"
            else:
                assert want not in timeline
                assert any(t.startswith(f"demo (not yet: {step},") for t in timeline), proc.stdout
    always = [" ".join(line.split()) for line in LINES[None]]
    assert [t for t in timeline if t in always] == always  # in this order, each once
    assert proc.stderr == "", proc.stderr
