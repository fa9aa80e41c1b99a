"""Bad input and limits (issue 8, §4.1, 4.2, 4.7): bodies nested too deeply,
bodies too large, Locations with too many EVSEs or connectors, and sessions
at places we do not have. Every refusal is an OCPI envelope and writes nothing."""

from __future__ import annotations

import json
import subprocess
import tomllib
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from evroam.admin.app import resolve_token
from evroam.config import NodeConfig, RoleConfig
from evroam.ocpi.common import Role
from evroam.store import calllog, objects
from evroam.modules.locations.rules import LocationLimits
from evroam.store.tables import OURS, outbox
from evroam.sync import importer
from tests.limits_support import (
    T1,
    admin,
    call,
    cdr_token,
    connector,
    evse,
    location,
    nested,
    pair,
    raw_exchange,
)
from tests.services import EVROAM

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
def cli_home(tmp_path):
    home = tmp_path / "home"
    proc = _evroam("init", "--home", str(home), "--country", "NL", "--party", "CPO", "--role", "CPO",
                   "--public-url", "http://127.0.0.1:1")
    assert proc.returncode == 0, proc.stderr
    return home


def _bad_files(tmp_path) -> dict[str, object]:
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


async def _count(node, module: str) -> tuple[int, int]:
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


# --- §4.2 body size, EVSEs per Location, connectors per EVSE -------------------------------------

LIMIT = 10_000


async def _stored(node, module: str, oid: str, owner: int = OURS) -> dict | None:
    async with node.engine.connect() as conn:
        found = await objects.find_any_owner(conn, module, oid, owner)
    return json.loads(found.data) if found else None


def _head(url: str, *lines: str) -> bytes:
    parts = urlsplit(url)
    return "\r\n".join([f"PUT {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
                        "Authorization: Bearer whatever", *lines, "", ""]).encode()


async def test_body_limit_answers_413_before_the_body_is_read(cluster):
    cpo, _, _, _ = await pair(cluster, max_body_bytes=LIMIT)
    base = cpo.config.public_url
    for url in (f"{base}/admin/locations/L1", f"{base}/ocpi/2.2.1/receiver/tokens/DE/EMS/TOK1"):
        # A declared length over the limit is refused at once: the gigabyte is never sent.
        status, body = await raw_exchange(url, _head(url, "Content-Length: 1000000000"), [b"{" + b" " * 1000])
        assert (status, body["status_code"]) == (413, 2000), (url, body)
        assert body["status_message"] == f"request body larger than {LIMIT} bytes (max_body_bytes)"
        # A chunked body is counted as it arrives: refused once past the limit, with no end in
        # sight. (Sent in one write, so the server has read all of it when it answers and
        # closes; bytes still unread then would make the kernel reset the connection.)
        chunks = (b"400\r\n" + b" " * 1024 + b"\r\n") * (LIMIT // 1024 + 1)
        status, body = await raw_exchange(url, _head(url, "Transfer-Encoding: chunked"), [chunks])
        assert (status, body["status_code"]) == (413, 2000), (url, body)
    # Exactly at the limit is fine; one byte more is not, and writes nothing.
    doc = json.dumps(location()).encode()
    status, _ = await admin(cpo, "PUT", "/locations/L2", raw=doc[:-1] + b" " * (LIMIT + 1 - len(doc)) + b"}")
    assert status == 413
    assert await _stored(cpo, "locations", "L2") is None
    status, _ = await admin(cpo, "PUT", "/locations/L1", raw=doc[:-1] + b" " * (LIMIT - len(doc)) + b"}")
    assert status == 201
    # The refusal is in the call log like any other answer.
    await cpo.call_log.flush()
    calls = await calllog.recent(cpo.engine, limit=50)
    assert any(c["http_status"] == 413 and "/receiver/tokens/" in c["url"] for c in calls)


def _evses(n: int, connectors: int = 1) -> list[dict]:
    return [evse(f"E{i}", [connector(str(j)) for j in range(1, connectors + 1)]) for i in range(1, n + 1)]


async def test_receiver_limits_evses_and_connectors(cluster):
    limits = {"max_evses_per_location": 3, "max_connectors_per_evse": 2}
    cpo, emsp, emsp_at_cpo, cpo_at_emsp = await pair(cluster, emsp_settings=limits)
    rx = emsp_at_cpo.endpoint_url("locations", "RECEIVER").rstrip("/") + "/NL/CPO/L1"
    token = emsp_at_cpo.token_out
    too_many_evses = "evses: 4 EVSEs; this node takes at most 3 per Location (max_evses_per_location)"
    too_many_connectors = ("evses.{i}.connectors: 3 connectors; this node takes at most 2 per EVSE "
                           "(max_connectors_per_evse)")
    for body, message in ((location(evses=_evses(4)), too_many_evses),
                          (location(evses=_evses(1, connectors=3)), too_many_connectors.format(i=0))):
        status, answer = await call("PUT", rx, token, body=body)
        assert (status, answer["status_code"], answer["status_message"]) == (200, 2001, message)
    assert await _stored(emsp, "locations", "L1", cpo_at_emsp.id) is None
    status, _ = await call("PUT", rx, token, body=location(evses=_evses(3, connectors=2)))
    assert status == 201
    before = await _stored(emsp, "locations", "L1", cpo_at_emsp.id)
    later = {"last_updated": T1}
    for method, tail, body, message in (
        ("PUT", "/E4", {**evse("E4"), **later}, too_many_evses),
        ("PUT", "/E1/3", connector("3", **later), too_many_connectors.format(i=0)),
        ("PATCH", "", {"evses": _evses(4), **later}, too_many_evses),
        ("PATCH", "/E2", {"connectors": [connector(str(j)) for j in (1, 2, 3)], **later},
         too_many_connectors.format(i=1)),
    ):
        status, answer = await call(method, rx + tail, token, body=body)
        assert (status, answer["status_code"]) == (200, 2001), (method, tail, answer)
        assert answer["status_message"].endswith(message), (method, tail, answer)
    assert await _stored(emsp, "locations", "L1", cpo_at_emsp.id) == before


async def test_default_limits_refuse_an_absurd_location(cluster):
    cpo, emsp, emsp_at_cpo, cpo_at_emsp = await pair(cluster)
    rx = emsp_at_cpo.endpoint_url("locations", "RECEIVER").rstrip("/") + "/NL/CPO/L1"
    status, answer = await call("PUT", rx, emsp_at_cpo.token_out, body=location(evses=_evses(2001)))
    assert (status, answer["status_code"]) == (200, 2001)
    assert answer["status_message"].startswith("evses: 2001 EVSEs; this node takes at most 2000 per Location")
    status, answer = await call("PUT", rx, emsp_at_cpo.token_out, body=location(evses=_evses(1, connectors=33)))
    assert answer["status_message"].startswith("evses.0.connectors: 33 connectors; this node takes at most 32")
    assert await _stored(emsp, "locations", "L1", cpo_at_emsp.id) is None


async def test_admin_and_import_limit_our_own_locations(cluster, tmp_path):
    cpo, _, _, _ = await pair(cluster, max_evses_per_location=3, max_connectors_per_evse=2)
    status, answer = await admin(cpo, "PUT", "/locations/L1", body=location(evses=_evses(4)))
    assert (status, answer["status_code"]) == (400, 2001)
    assert answer["status_message"].startswith("evses: 4 EVSEs; this node takes at most 3 per Location")
    big = tmp_path / "big.json"
    big.write_text(json.dumps([location("L2"), location("L3", evses=_evses(1, connectors=3))]))
    (report,) = await importer.import_files(cpo.engine, "locations", [big], cpo.config.roles,
                                            config=cpo.config)
    assert report.errors == [f"{big}[1]: evses.0.connectors: 3 connectors; this node takes at most 2 per EVSE "
                             "(max_connectors_per_evse)"]
    assert await _count(cpo, "locations") == (0, 0)


def test_limits_are_config_keys_with_defaults(tmp_path):
    cfg = NodeConfig(home=tmp_path, public_url="http://127.0.0.1:1",
                     roles=[RoleConfig(role=Role.CPO, country_code="NL", party_id="CPO", name="x")])
    path = cfg.save()
    saved = tomllib.loads(path.read_text())
    assert (saved["max_body_bytes"], saved["max_evses_per_location"], saved["max_connectors_per_evse"]) == (
        4 * 1024 * 1024, 2000, 32)
    path.write_text(path.read_text().replace("max_evses_per_location = 2000", "max_evses_per_location = 5"))
    assert NodeConfig.load(tmp_path).location_limits == LocationLimits(max_evses=5, max_connectors=32)
    path.write_text(path.read_text().replace("max_body_bytes = 4194304", "max_body_bytes = 0"))
    with pytest.raises(ValueError, match="max_body_bytes must be a whole number of at least 1"):
        NodeConfig.load(tmp_path)


# --- §4.6 values no charger has ---------------------------------------------------------------------


async def test_receivers_and_admin_refuse_values_no_charger_has(cluster):
    cpo, emsp, emsp_at_cpo, cpo_at_emsp = await pair(cluster)
    rx = emsp_at_cpo.endpoint_url("locations", "RECEIVER").rstrip("/") + "/NL/CPO/L1"
    token = emsp_at_cpo.token_out
    cases = [
        (location(evses=[evse(connectors=[connector(max_voltage=-1)])]), "evses.0.connectors.0.max_voltage"),
        (location(evses=[evse(connectors=[connector(max_voltage=10**30)])]), "evses.0.connectors.0.max_voltage"),
        (location(time_zone="../../../../etc/passwd"), "time_zone"),
    ]
    for body, field in cases:
        status, answer = await call("PUT", rx, token, body=body)
        assert (status, answer["status_code"]) == (200, 2001), answer
        assert answer["status_message"].startswith(f"{field}: "), answer
        status, answer = await admin(cpo, "PUT", "/locations/L1", body=body)
        assert (status, answer["status_code"]) == (400, 2001), answer
        assert answer["status_message"].startswith(f"{field}: "), answer
    assert await _stored(emsp, "locations", "L1", cpo_at_emsp.id) is None
    assert await _count(cpo, "locations") == (0, 0)
    # A PATCH that would make a stored Location invalid is refused the same way.
    status, _ = await call("PUT", rx, token, body=location())
    assert status == 201
    status, answer = await call("PATCH", rx + "/E1/1", token, body={"max_amperage": -16, "last_updated": T1})
    assert (status, answer["status_code"]) == (200, 2001) and "max_amperage" in answer["status_message"]
    session = {"country_code": "NL", "party_id": "CPO", "id": "S1", "start_date_time": T1, "kwh": -5,
               "cdr_token": cdr_token(), "auth_method": "WHITELIST", "location_id": "L1", "evse_uid": "E1",
               "connector_id": "1", "currency": "EUR", "status": "ACTIVE", "last_updated": T1}
    url = emsp_at_cpo.endpoint_url("sessions", "RECEIVER").rstrip("/") + "/NL/CPO/S1"
    status, answer = await call("PUT", url, token, body=session)
    assert (status, answer["status_code"]) == (200, 2001) and answer["status_message"].startswith("kwh: ")
    assert await _stored(emsp, "sessions", "S1", cpo_at_emsp.id) is None


def test_admin_token_file_that_is_not_text_disables_the_admin_api(tmp_path, monkeypatch):
    secret = tmp_path / "admin-token"
    secret.write_bytes(b"\xff\xfe" + b"\x00" * 20)
    monkeypatch.delenv("EVROAM_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("EVROAM_ADMIN_TOKEN_FILE", str(secret))
    cfg = NodeConfig(home=tmp_path, public_url="http://127.0.0.1:1",
                     roles=[RoleConfig(role=Role.CPO, country_code="NL", party_id="CPO", name="x")])
    with capture_logs() as logs:
        assert resolve_token(cfg) is None
    assert [(e["event"], e["error"]) for e in logs] == [("admin.token_file_unreadable", "not UTF-8 text")]


def test_a_config_file_that_is_not_toml_is_one_line(cli_home):
    (cli_home / "evroam.toml").write_bytes(b"\xff\xfe not toml")
    proc = _evroam("partners", "list", "--home", str(cli_home))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
