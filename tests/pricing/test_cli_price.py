"""`evroam price`, through typer's CliRunner on an app with `register(app)`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from evroam.cli_price import EXIT_INPUT, EXIT_MISMATCH, register
from evroam.pricing import build_cdr
from tests.pricing import fixtures as fx
from tests.pricing.fixtures import CASE_A, LOCATION

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """evroam (test app)"""

    register(app)
    return app


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    cdr, _ = build_cdr(CASE_A, fx.T4, LOCATION, time_zone="Europe/Amsterdam")
    bad = cdr.to_wire()
    bad["total_cost"] = {"excl_vat": 9.5, "incl_vat": 10.85}
    paths = {
        "tariff": tmp_path / "tariff.json",
        "tariffs": tmp_path / "tariffs.json",
        "session": tmp_path / "session.json",
        "cdr": tmp_path / "cdr.json",
        "bad_cdr": tmp_path / "bad_cdr.json",
        "location": tmp_path / "location.json",
        "broken": tmp_path / "broken.json",
    }
    paths["tariff"].write_bytes(fx.T4.to_json_bytes())
    paths["tariffs"].write_text(json.dumps({"status_code": 1000, "timestamp": "2024-05-13T00:00:00Z",
                                            "data": [fx.T1.to_wire(), fx.T4.to_wire()]}))
    paths["session"].write_bytes(CASE_A.to_json_bytes())
    paths["cdr"].write_bytes(cdr.to_json_bytes())
    paths["bad_cdr"].write_text(json.dumps(bad))
    paths["location"].write_text(json.dumps({"id": "LOC1", "time_zone": "Europe/Amsterdam"}))
    paths["broken"].write_text("{not json")
    return paths


def run(app, *args: str):
    return runner.invoke(app, ["price", *map(str, args)])


def test_session_breakdown_table(app, files):
    r = run(app, "--tariff", files["tariff"], "--session", files["session"], "--location", files["location"])
    assert r.exit_code == 0, r.output
    assert "Time zone: Europe/Amsterdam (the Location" in r.output
    assert "Cost per period and dimension" in r.output and "PARKING_TIME" in r.output
    assert "total_cost" in r.output and "9.0000" in r.output and "10.3000" in r.output


def test_session_json(app, files):
    r = run(app, "--tariff", files["tariff"], "--session", files["session"], "--time-zone", "Europe/Amsterdam",
            "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["time_zone"] == "Europe/Amsterdam" and out["time_zone_source"] == "--time-zone"
    assert out["totals"]["total_cost"] == {"excl_vat": "9.0000", "incl_vat": "10.3000"}
    assert out["totals"]["total_parking_cost"]["excl_vat"] == "3.7500"
    assert [p["kind"] for p in out["periods"]] == ["CHARGING", "CHARGING", "PARKING"]


def test_time_zone_option_overrides_location_and_default_is_announced(app, files):
    r = run(app, "--tariff", files["tariff"], "--session", files["session"], "--location", files["location"],
            "--time-zone", "UTC", "--json")
    assert json.loads(r.output)["time_zone"] == "UTC"
    r = run(app, "--tariff", files["tariff"], "--session", files["session"])
    assert r.exit_code == 0
    assert "Time zone: UTC (assumed: no --location or --time-zone given)" in r.output


def test_connector_tariffs_with_a_preference(app, files):
    r = run(app, "--tariff", files["tariffs"], "--session", files["session"], "--time-zone", "Europe/Amsterdam",
            "--json")
    # tariff 1 is untyped, tariff 4 REGULAR: the REGULAR one serves a session without preference.
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["tariffs"] == ["14"]


def test_check_matching_cdr(app, files):
    r = run(app, "--tariff", files["tariff"], "--cdr", files["cdr"], "--check", "--location", files["location"])
    assert r.exit_code == 0, r.output
    assert "matches its tariff" in r.output


def test_check_mismatching_cdr_exits_non_zero(app, files):
    r = run(app, "--tariff", files["tariff"], "--cdr", files["bad_cdr"], "--check", "--time-zone",
            "Europe/Amsterdam")
    assert r.exit_code == EXIT_MISMATCH
    assert "total_cost.excl_vat" in r.output
    r = run(app, "--cdr", files["bad_cdr"], "--check", "--time-zone", "Europe/Amsterdam", "--json")
    assert r.exit_code == EXIT_MISMATCH
    check = json.loads(r.output)["check"]
    assert check["ok"] is False
    assert {d["field"] for d in check["differences"]} == {"total_cost.excl_vat", "total_cost.incl_vat"}
    # A tolerance above the difference accepts it.
    r = run(app, "--cdr", files["bad_cdr"], "--check", "--time-zone", "Europe/Amsterdam", "--tolerance", "0.6")
    assert r.exit_code == 0, r.output


def test_cdr_without_check_prints_the_breakdown(app, files):
    r = run(app, "--cdr", files["cdr"], "--time-zone", "Europe/Amsterdam", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["totals"]["total_cost"]["excl_vat"] == "9.0000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--session", "S", "--cdr", "C"], "exactly one of --session or --cdr"),
        (["--session", "SESSION", "--check"], "--check needs --cdr"),
        (["--tariff", "BROKEN", "--session", "SESSION"], "not valid JSON"),
        (["--tariff", "MISSING", "--session", "SESSION"], "cannot read"),
        (["--tariff", "SESSION", "--session", "SESSION"], "not a valid OCPI 2.2.1 Tariff"),
        (["--tariff", "TARIFF", "--session", "SESSION", "--time-zone", "Mars/Base"], "unknown IANA time zone"),
        (["--tariff", "TARIFF", "--session", "SESSION", "--rounding", "UP"], "--rounding"),
        (["--session", "SESSION"], "--tariff"),
    ],
)
def test_input_errors(app, files, tmp_path, args, message):
    subst = {"SESSION": files["session"], "BROKEN": files["broken"], "MISSING": tmp_path / "nope.json",
             "TARIFF": files["tariff"], "S": files["session"], "C": files["cdr"]}
    r = run(app, *[str(subst.get(a, a)) for a in args])
    assert r.exit_code == EXIT_INPUT, r.output
    assert message in r.output


def test_policy_options(app, files):
    r = run(app, "--tariff", files["tariff"], "--session", files["session"], "--time-zone", "Europe/Amsterdam",
            "--places", "2", "--json")
    assert json.loads(r.output)["totals"]["total_cost"] == {"excl_vat": "9.00", "incl_vat": "10.30"}
