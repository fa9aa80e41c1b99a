"""Bad input and limits (issue 8, §4.1, 4.2, 4.7): bodies nested too deeply,
bodies too large, Locations with too many EVSEs or connectors, and sessions
at places we do not have. Every refusal is an OCPI envelope and writes nothing."""

from __future__ import annotations

import json
import subprocess

import pytest

from evroam.store import objects
from evroam.store import parties as party_repo
from evroam.store.tables import outbox
from tests.limits_support import (
    EVROAM,
    T1,
    admin,
    call,
    cdr_token,
    connector,
    evse,
    location,
    nested,
    pair,
)

import sqlalchemy as sa

DEEP = 2000


# --- §4.1 deeply nested JSON -------------------------------------------------------------------


async def test_deeply_nested_patch_is_400_on_every_receiver(cluster):
    _, _, emsp_at_cpo, cpo_at_emsp = await pair(cluster)
    targets = [
        (emsp_at_cpo, "locations", "/NL/CPO/L1"),
        (emsp_at_cpo, "locations", "/NL/CPO/L1/E1"),
        (emsp_at_cpo, "locations", "/NL/CPO/L1/E1/1"),
        (emsp_at_cpo, "sessions", "/NL/CPO/S1"),
        (cpo_at_emsp, "tokens", "/DE/EMS/TOK1"),
    ]
    for party, module, tail in targets:
        url = party.endpoint_url(module, "RECEIVER").rstrip("/") + tail
        status, body = await call("PATCH", url, party.token_out, raw=nested(DEEP))
        assert (status, body["status_code"]) == (400, 2000), (module, tail, body)
        assert body["status_message"].startswith("request body is not valid JSON: recursion limit exceeded")
        # Bytes that are not UTF-8 are not JSON either.
        status, body = await call("PATCH", url, party.token_out, raw=b'{"last_updated": "\xff"}')
        assert (status, body["status_code"]) == (400, 2000), (module, tail, body)
    # PUT always answered so (tariffs have no PATCH): one parser, one answer.
    for party, module, tail in [*targets, (emsp_at_cpo, "tariffs", "/NL/CPO/T1")]:
        url = party.endpoint_url(module, "RECEIVER").rstrip("/") + tail
        status, body = await call("PUT", url, party.token_out, raw=nested(DEEP))
        assert (status, body["status_code"]) == (400, 2000), (module, tail, body)


async def test_deeply_nested_admin_bodies_are_400(cluster):
    cpo, _, _, _ = await pair(cluster)
    for method, path in (("PUT", "/locations/L1"), ("PUT", "/tariffs/T1"), ("PUT", "/cdrs/C1"),
                         ("PUT", "/locations/L1/evses/E1/status"), ("POST", "/sessions"),
                         ("PATCH", "/sessions/S1"), ("POST", "/commands/emsp/START_SESSION")):
        status, body = await admin(cpo, method, path, raw=nested(DEEP))
        assert status == 400 and body["status_code"] in (2000, 2001), (method, path, body)
        status, body = await admin(cpo, method, path, raw=b'{"status": "\xff"}')
        assert status == 400 and body["status_code"] in (2000, 2001), (method, path, body)


def _evroam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EVROAM, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli_home(tmp_path):  # noqa: ANN001, ANN201
    home = tmp_path / "home"
    proc = _evroam("init", "--home", str(home), "--country", "NL", "--party", "CPO", "--role", "CPO",
                   "--public-url", "http://127.0.0.1:1")
    assert proc.returncode == 0, proc.stderr
    return home


def _bad_files(tmp_path) -> dict[str, object]:  # noqa: ANN001
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * DEEP + b"]" * DEEP)
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(json.dumps(location()).replace("Utrecht", "Utr\u00e9cht").encode("latin-1"))
    return {"deep": deep, "latin1": latin1}


def _one_clear_line(proc: subprocess.CompletedProcess, name: str, words: str) -> None:
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert any(name in line and words in line for line in out.splitlines()), out


def test_cli_data_import_rejects_deep_and_non_utf8_files(cli_home, tmp_path):
    files = _bad_files(tmp_path)
    for name, words in (("deep", "recursion limit exceeded"), ("latin1", "not UTF-8")):
        proc = _evroam("data", "import", "--home", str(cli_home), "--module", "locations", str(files[name]))
        _one_clear_line(proc, f"{name}.json", words)


def test_cli_price_rejects_deep_and_non_utf8_files(tmp_path):
    files = _bad_files(tmp_path)
    for name, words in (("deep", "recursion limit exceeded"), ("latin1", "not UTF-8")):
        for option in ("--tariff", "--session", "--location"):
            argv = ["price", option, str(files[name])]
            if option != "--session":
                argv += ["--session", str(tmp_path / "absent.json")]
            proc = _evroam(*argv)
            assert proc.returncode == 2, proc.stderr
            _one_clear_line(proc, f"{name}.json", words)


# --- §4.7 sessions and CDRs at places we do not have -----------------------------------------


async def _count(node, module: str) -> tuple[int, int]:  # noqa: ANN001
    """(our stored objects, outbox rows) of a module at `node`."""
    async with node.engine.connect() as conn:
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(objects.objects)
                                     .where(objects.objects.c.module == module))).scalar_one()
        queued = (await conn.execute(sa.select(sa.func.count()).select_from(outbox)
                                     .where(outbox.c.module == module))).scalar_one()
    return stored, queued


def _start(**over: object) -> dict:
    return {"location_id": "L1", "evse_uid": "E1", "connector_id": "1", "cdr_token": cdr_token(),
            "currency": "EUR", "start_date_time": T1, **over}


async def test_admin_refuses_a_session_at_a_place_we_do_not_have(cluster):
    cpo, _, _, _ = await pair(cluster)
    removed = {**evse("E2"), "status": "REMOVED"}
    status, _ = await admin(cpo, "PUT", "/locations/L1", body=location(evses=[evse("E1"), removed]))
    assert status == 201
    cases = [
        (_start(location_id="NOWHERE"), "location_id: we have no Location 'NOWHERE' under NL/CPO"),
        (_start(evse_uid="E9"), "evse_uid: Location 'L1' has no EVSE 'E9'"),
        (_start(evse_uid="E2"), "evse_uid: EVSE 'E2' of Location 'L1' is REMOVED"),
        (_start(connector_id="9"), "connector_id: EVSE 'E1' of Location 'L1' has no connector '9'"),
        # "#NA" stands for an EVSE not yet assigned only in a reservation.
        (_start(evse_uid="#NA", connector_id="#NA"), "evse_uid: Location 'L1' has no EVSE '#NA'"),
        (_start(evse_uid="#NA", status="RESERVATION"), "connector_id: must be #NA when evse_uid is"),
    ]
    for body, message in cases:
        status, answer = await admin(cpo, "POST", "/sessions", body={"id": "S1", **body})
        assert (status, answer["status_code"], answer["status_message"]) == (400, 2003, message)
    assert await _count(cpo, "sessions") == (0, 0)
    status, answer = await admin(cpo, "POST", "/sessions", body=_start(id="R1", evse_uid="#NA", connector_id="#NA",
                                                                        status="RESERVATION"))
    assert (status, answer["data"]["evse_uid"]) == (201, "#NA")
    status, answer = await admin(cpo, "POST", "/sessions", body=_start(id="S1", evse_uid="e1"))
    assert (status, answer["data"]["id"]) == (201, "S1")


def _cdr(**where: object) -> dict:
    cdr_location = {"id": "L1", "address": "Main St 1", "city": "Utrecht", "country": "NLD",
                    "coordinates": {"latitude": "52.090000", "longitude": "5.120000"}, "evse_uid": "E1",
                    "evse_id": "NL*CPO*EE1", "connector_id": "1", "connector_standard": "IEC_62196_T2",
                    "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE", **where}
    return {"country_code": "NL", "party_id": "CPO", "id": "C1", "start_date_time": T1,
            "end_date_time": "2026-02-01T01:00:00Z", "cdr_token": cdr_token(), "auth_method": "WHITELIST",
            "cdr_location": cdr_location, "currency": "EUR",
            "charging_periods": [{"start_date_time": T1, "dimensions": [{"type": "ENERGY", "volume": 10}]}],
            "total_cost": {"excl_vat": 2.5}, "total_energy": 10, "total_time": 1, "last_updated": T1}


async def test_admin_refuses_a_cdr_at_a_place_we_do_not_have(cluster):
    cpo, _, _, _ = await pair(cluster)
    removed = {**evse("E2"), "status": "REMOVED"}
    status, _ = await admin(cpo, "PUT", "/locations/L1", body=location(evses=[evse("E1"), removed]))
    assert status == 201
    for where, message in (
        ({"id": "NOWHERE"}, "cdr_location.id: we have no Location 'NOWHERE' under NL/CPO"),
        ({"evse_uid": "E9"}, "cdr_location.evse_uid: Location 'L1' has no EVSE 'E9'"),
        ({"connector_id": "9"}, "cdr_location.connector_id: EVSE 'E1' of Location 'L1' has no connector '9'"),
    ):
        status, answer = await admin(cpo, "PUT", "/cdrs/C1", body=_cdr(**where))
        assert (status, answer["status_code"], answer["status_message"]) == (400, 2003, message)
    assert await _count(cpo, "cdrs") == (0, 0)
    # A CDR of an EVSE removed since, and one of a reservation without an EVSE, are fine.
    status, _ = await admin(cpo, "PUT", "/cdrs/C1", body=_cdr(evse_uid="E2"))
    assert status == 201
    na = _cdr(evse_uid="#NA", evse_id="#NA", connector_id="#NA")
    status, _ = await admin(cpo, "PUT", "/cdrs/C2", body={**na, "id": "C2"})
    assert status == 201
