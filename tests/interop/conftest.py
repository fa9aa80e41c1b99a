"""The interop suite: evroam against extrawest-ocpi, an independent implementation.

`partner/` holds the partner's apps, run by the interop venv's python; they
import py_ocpi, which our environment does not have, so pytest never
collects them.
"""

from __future__ import annotations

import pytest

from tests.interop.harness import Partner, interop_python
from tests.nodes import Cluster, Databases

collect_ignore = ["partner"]


@pytest.fixture(scope="session")
def partner_python():
    return interop_python()


@pytest.fixture
async def evroam(tmp_path):
    """evroam nodes, in process, on SQLite (the backends are covered by the
    integration suite; interop is about the wire)."""
    cluster = Cluster(Databases("sqlite", tmp_path), tmp_path)
    try:
        yield cluster
    finally:
        await cluster.close()


@pytest.fixture(scope="session")
def partner_processes(partner_python, tmp_path_factory):
    """One partner process per role for the whole session, started on first use."""
    started: dict[tuple[str, str, str], Partner] = {}

    def get(role: str, country: str, party: str) -> Partner:
        key = (role, country, party)
        if key not in started:
            started[key] = Partner(partner_python, tmp_path_factory.mktemp(f"partner-{role}"), *key).start()
        return started[key]

    yield get
    for p in started.values():
        p.stop()


@pytest.fixture
def partner(partner_processes):
    """`await partner(*PARTNER_CPO)`: the partner in that role, emptied for this test."""
    return lambda role, country, party: partner_processes(role, country, party).reset()
