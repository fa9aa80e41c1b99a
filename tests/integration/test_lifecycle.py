"""The whole session lifecycle between a CPO node and an eMSP node over real
HTTP (issue 4 acceptance), on SQLite and on PostgreSQL: what `make demo` runs.

Each step inside waits on its own condition with a deadline and raises if it
does not hold; the last one requires the eMSP's re-pricing to ACCEPT the CDR.
"""

from __future__ import annotations

from evroam.demo.run import lifecycle


async def test_lifecycle(cluster, tmp_path, capsys):
    cpo_db, emsp_db = await cluster.dbs.new("demo-cpo"), await cluster.dbs.new("demo-emsp")
    assert await lifecycle(tmp_path, cpo_db, emsp_db) == 0
    out = capsys.readouterr().out
    for step in ("registered with nl-evr", "pulled locations: 1", "received the push: E2 OUTOFORDER",
                 "pushed token APP-0001", "START_SESSION: response ACCEPTED", "result ACCEPTED",
                 "3 charging periods PATCHed in", "the session is COMPLETED", "re-priced it: ACCEPTED",
                 "lifecycle complete"):
        assert step in out, step
