"""The network demo (`make demo`, second part): a Hub, two CPOs and two
eMSPs as real nodes, run as `python -m evroam.demo.network` to its end."""

from __future__ import annotations

import os
import subprocess
import sys

# The timeline's lines, in order, each once.
LINES = [
    "cpo1  registered with the Hub as NL/CP1 (Utrecht Charging), OCPI 2.2.1",
    "cpo2  registered with the Hub as BE/CP2 (Gent Laadpalen), OCPI 2.2.1",
    "emsp1  registered with the Hub as DE/EM1 (Berlin Mobility), OCPI 2.2.1",
    "emsp2  registered with the Hub as FR/EM2 (Paris Recharge), OCPI 2.2.1",
    "hub  pushed HubClientInfo of each newcomer to the parties already connected: FR/EM2 CONNECTED at all",
    "cpo1  publishes tariff AC-STANDARD and location UTRECHT-CS: a broadcast through the Hub",
    "cpo2  publishes tariff AC-STANDARD and location GENT-SP: a broadcast through the Hub",
    "hub  delivered both CPOs' tariffs and locations to both eMSPs",
    "emsp1  GET All Locations through the Hub: 2 merged from both CPOs: BE/CP2/GENT-SP, NL/CP1/UTRECHT-CS",
    "emsp2  GET All Locations through the Hub: 2 merged from both CPOs: BE/CP2/GENT-SP, NL/CP1/UTRECHT-CS",
    "emsp1  pulled the Locations of each CPO through the Hub: 2 stored",
    "emsp1  broadcasts token APP-0001 (PUT, TO = the Hub)",
    "cpo1  received token APP-0001 from the Hub",
    "cpo2  received token APP-0001 from the Hub",
    "emsp1  START_SESSION to BE/CP2 through the Hub: response ACCEPTED, result ACCEPTED",
    "emsp1  received the CDR through the Hub and re-priced it: ACCEPTED",
    "cpo1  goes offline (its node stops)",
    "hub  liveness check: NL/CP1 does not answer: OFFLINE, pushed to every party",
    "demo  emsp1, emsp2 and cpo2 see NL/CP1 OFFLINE in HubClientInfo",
    "cpo1  comes back on the same port",
    "hub  liveness check: NL/CP1 answers again: CONNECTED",
    "demo  emsp1, emsp2 and cpo2 see NL/CP1 CONNECTED in HubClientInfo",
    "demo  network demo complete",
]


def test_the_network_demo_runs_every_step_and_exits_0():
    proc = subprocess.run([sys.executable, "-m", "evroam.demo.network"], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Each line without its clock ("  3.41s  "), padding collapsed.
    timeline = [" ".join(line.split()[1:]) for line in proc.stdout.splitlines() if line.strip()]
    always = [" ".join(line.split()) for line in LINES]
    assert [t for t in timeline if t in always] == always, proc.stdout
    assert proc.stderr == "", proc.stderr
