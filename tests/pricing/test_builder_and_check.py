"""The CDR builder (CPO side) and the consistency checker (eMSP side)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from evroam.ocpi.cdrs import CDR
from evroam.pricing import (
    CdrBuildError,
    NoApplicableTariff,
    PricingPolicy,
    Timeline,
    build_cdr,
    charging,
    check_cdr,
    credit_cdr,
    parking,
    price,
    reservation,
)
from evroam.pricing.builder import cdr_from_result
from tests.examples import load_example
from tests.pricing import fixtures as fx
from tests.pricing.fixtures import CASE_A, LOCATION, D, el, local, pc, session, tariff, utc

AMS = "Europe/Amsterdam"
def test_build_cdr_from_session_validates_and_carries_everything():
    cdr, result = build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS, last_updated=utc("2024-05-13T11:00:00"))
    assert isinstance(cdr, CDR)
    CDR.from_wire(cdr.to_json_bytes())  # the wire form validates too
    assert cdr.id == "S-1" and cdr.session_id == "S-1" and cdr.authorization_reference == "AUTH-1"
    assert cdr.total_cost.excl_vat == D("9.00") and cdr.total_cost.incl_vat == D("10.30")
    assert cdr.total_fixed_cost.excl_vat == D("2.50")
    assert cdr.total_time_cost.excl_vat == D("2.75")
    assert cdr.total_parking_cost.excl_vat == D("3.75")
    assert cdr.total_energy_cost is None  # tariff_4 prices no energy
    assert cdr.total_energy == D(20) and cdr.total_time == D("3.45") and cdr.total_parking_time == D("0.7")
    assert [t.id for t in cdr.tariffs] == ["14"] and cdr.tariffs[0] == fx.T4
    assert cdr.cdr_location == LOCATION and cdr.cdr_token == CASE_A.cdr_token
    # A period wherever an element may change: 10:00 local (the Saturday parking window bound) splits charging.
    starts = [cp.start_date_time.strftime("%H:%M") for cp in cdr.charging_periods]
    assert starts == ["07:30", "08:00", "10:15"]
    assert all(cp.tariff_id == "14" for cp in cdr.charging_periods)
    dims = {d.type.value: d.volume for d in cdr.charging_periods[0].dimensions}
    # 30 of the 165 minutes before the split: energy interpolated, 4 decimals.
    assert dims == {"ENERGY": D("3.6364"), "TIME": D("0.5"), "MIN_CURRENT": D(16), "MAX_CURRENT": D(16)}
    assert result.totals.total_cost.excl == D("9.00")


def test_built_cdr_checks_out_round_trip():
    cdr, _ = build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS)
    received = CDR.from_wire(cdr.to_json_bytes())
    report = check_cdr(received, time_zone=AMS)
    assert report.ok, report.summary()
    assert not report.inconsistencies, report.summary()


def test_builder_for_every_golden_tariff_validates():
    tl = Timeline.sequence(local("2024-05-18T09:00:00"), [reservation(20), charging(95, 33, current=40, power=27),
                                                          parking(50)], time_zone=AMS)
    for name, t in fx.HAND_BUILT.items():
        result = price(t, tl)
        cdr = cdr_from_result(result, cdr_id=f"CDR-{name}", country_code="NL", party_id="EVR",
                              cdr_token=CASE_A.cdr_token, auth_method=CASE_A.auth_method, cdr_location=LOCATION)
        again = CDR.from_wire(cdr.to_json_bytes())
        report = check_cdr(again, time_zone=AMS)
        assert report.ok, (name, report.summary())


def test_builder_refuses_a_long_id_and_an_unfinished_session():
    with pytest.raises(CdrBuildError, match="id"):
        build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS, cdr_id="x" * 37)
    unfinished = CASE_A.model_copy(update={"end_date_time": None})
    with pytest.raises(CdrBuildError, match="end_date_time"):
        build_cdr(unfinished, fx.T4, LOCATION, time_zone=AMS)


def test_builder_refuses_a_currency_mismatch():
    chf = fx.T1.model_copy(update={"currency": "CHF"})
    with pytest.raises(CdrBuildError, match="currency"):
        build_cdr(CASE_A, chf, LOCATION, time_zone=AMS)


def test_reservation_only_cdr():
    s = session([{"start_date_time": "2024-05-13T07:30:00Z", "dimensions": [{"type": "RESERVATION_TIME",
                                                                               "volume": 1.0}]}],
                end="2024-05-13T08:30:00Z", kwh=0)
    cdr, _ = build_cdr(s, fx.T17, LOCATION, time_zone=AMS)
    assert cdr.total_cost.excl_vat == D("6.00") and cdr.total_reservation_cost.incl_vat == D("7.20")
    assert cdr.total_energy == 0 and [d.type.value for d in cdr.charging_periods[0].dimensions] == ["RESERVATION_TIME"]
    assert check_cdr(CDR.from_wire(cdr.to_json_bytes()), time_zone=AMS).ok


def test_free_session_cdr():
    cdr, _ = build_cdr(CASE_A, fx.T5, LOCATION, time_zone=AMS)
    assert cdr.total_cost.excl_vat == 0 and cdr.total_cost.incl_vat == 0
    assert cdr.total_fixed_cost is not None  # the free FLAT component was used


# --- credit CDRs ---------------------------------------------------------------------------------


def test_credit_cdr():
    cdr, _ = build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS, cdr_id="x" * 36)
    credit = credit_cdr(cdr)
    assert credit.id == "x" * 36 + "-C"
    assert len(credit_cdr(cdr, credit_id="x" * 36 + "-CR").id) == 39  # the 3 extra characters of a credit id
    assert credit.credit is True and credit.credit_reference_id == cdr.id
    assert credit.total_cost.excl_vat == -cdr.total_cost.excl_vat
    assert credit.total_cost.incl_vat == -cdr.total_cost.incl_vat
    # "Only the values in the total_cost field SHALL contain the negative amounts."
    assert credit.total_parking_cost == cdr.total_parking_cost
    assert credit.charging_periods == cdr.charging_periods and credit.tariffs == cdr.tariffs
    CDR.from_wire(credit.to_json_bytes())
    assert check_cdr(credit, time_zone=AMS).ok


def test_credit_cdr_options_and_refusals():
    cdr, _ = build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS)
    full = credit_cdr(cdr, credit_id="S-1-CREDIT", negate_breakdown=True)
    assert full.total_parking_cost.excl_vat == -cdr.total_parking_cost.excl_vat
    assert check_cdr(full, time_zone=AMS).ok
    with pytest.raises(CdrBuildError, match="itself a Credit CDR"):
        credit_cdr(full)
    long, _ = build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS, cdr_id="y" * 36)
    with pytest.raises(CdrBuildError, match="39"):
        credit_cdr(long, credit_id="y" * 40)
    with pytest.raises(CdrBuildError, match="own"):
        credit_cdr(cdr, credit_id=cdr.id)


# --- the checker ----------------------------------------------------------------------------------


def _cdr_dict():
    cdr, _ = build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS)
    return cdr.to_wire()


def test_check_reports_each_dimension_above_tolerance():
    d = _cdr_dict()
    d["total_parking_cost"] = {"excl_vat": 4.25, "incl_vat": 4.675}  # billed 51 min instead of 45
    d["total_cost"] = {"excl_vat": 9.5, "incl_vat": 10.85}
    d["total_time_cost"]["excl_vat"] = 2.755  # within the 0.01 tolerance
    report = check_cdr(CDR.from_wire(d), time_zone=AMS)
    assert not report.ok
    fields = {x.field: (x.dimension, x.delta) for x in report.differences}
    assert fields == {
        "total_cost.excl_vat": ("total", D("0.5")),
        "total_cost.incl_vat": ("total", D("0.55")),
        "total_parking_cost.excl_vat": ("parking", D("0.5")),
        "total_parking_cost.incl_vat": ("parking", D("0.55")),
    }
    assert "total_parking_cost.excl_vat" in report.summary()
    # A looser tolerance accepts it.
    assert check_cdr(CDR.from_wire(d), time_zone=AMS, tolerance=D("0.6")).ok


def test_check_uses_the_location_time_zone():
    # Without the Location's zone UTC is assumed, and the report says so (here the totals agree either way).
    report = check_cdr(CDR.from_wire(_cdr_dict()))
    assert report.ok and any("UTC assumed" in n for n in report.notes)
    # A CDR whose parking straddles 18:00 local (16:00 UTC in summer) is judged differently in UTC.
    late = session([
        {"start_date_time": "2024-05-13T14:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 10},
                                                                   {"type": "MAX_CURRENT", "volume": 16}]},
        {"start_date_time": "2024-05-13T15:00:00Z", "dimensions": [{"type": "PARKING_TIME", "volume": 2}]},
    ], start="2024-05-13T14:00:00Z", end="2024-05-13T17:00:00Z")
    cdr, _ = build_cdr(late, fx.T4, LOCATION, time_zone=AMS)
    assert cdr.total_parking_cost.excl_vat == D("5.00")  # 17:00-18:00 local only
    assert check_cdr(cdr, time_zone=AMS).ok
    assert not check_cdr(cdr).ok  # in UTC all two hours fall inside 09:00-18:00


def test_check_with_our_tariff_when_the_cdr_carries_none():
    d = _cdr_dict()
    del d["tariffs"]
    for cp in d["charging_periods"]:
        cp.pop("tariff_id")
    cdr = CDR.from_wire(d)
    with pytest.raises(NoApplicableTariff):
        check_cdr(cdr, time_zone=AMS)
    report = check_cdr(cdr, tariffs=[fx.T4], time_zone=AMS)
    assert report.ok and "tariffs: ours for this connector" in report.notes
    # Against a different tariff of ours, the CDR does not match.
    cheaper = tariff("14", el(pc("FLAT", 1.0, 15.0)), type="REGULAR")
    assert not check_cdr(cdr, tariffs=[cheaper], time_zone=AMS).ok


def test_check_notes_a_snapshot_that_differs_from_our_copy():
    changed = tariff("14", el(pc("FLAT", 9.0, 15.0)), type="REGULAR")
    report = check_cdr(CDR.from_wire(_cdr_dict()), tariffs=[changed], time_zone=AMS)
    assert report.ok  # priced with the CDR's snapshot, as the spec says
    assert any("differs from ours" in n for n in report.notes)


def test_check_flags_currency_and_quantities():
    d = _cdr_dict()
    d["currency"] = "CHF"
    d["total_energy"] = 25
    report = check_cdr(CDR.from_wire(d), time_zone=AMS)
    assert [x.field for x in report.differences] == ["currency"]
    assert [x.field for x in report.inconsistencies] == ["total_energy"]


def test_check_spec_cdr_example():
    raw = load_example("cdr_example.json")
    raw["cdr_token"].update(country_code="NL", party_id="TST")
    report = check_cdr(CDR.from_wire(raw), time_zone="Europe/Brussels")
    assert report.ok and not report.inconsistencies
    tampered = copy.deepcopy(raw)
    tampered["total_time_cost"] = {"excl_vat": 3.95, "incl_vat": 4.35}
    report = check_cdr(CDR.from_wire(tampered))
    assert [x.field for x in report.differences] == ["total_time_cost.excl_vat", "total_time_cost.incl_vat"]


def test_check_policy_changes_the_verdict_on_disputed_cases():
    # tariff_14 #1 as a CDR billed by a CPO that follows the 2.2.1 numbers (0.383).
    tl = Timeline.sequence(local("2024-05-14T16:55:00"), [charging(10, 2), parking(2)], time_zone=AMS)
    literal = PricingPolicy.ocpi_221_tariff14_literal()
    result = price(fx.T14, tl, policy=literal)
    cdr = cdr_from_result(result, cdr_id="T14-1", country_code="NL", party_id="EVR", cdr_token=CASE_A.cdr_token,
                          auth_method=CASE_A.auth_method, cdr_location=LOCATION)
    assert cdr.total_cost.excl_vat == D("0.3833")
    ours = check_cdr(cdr, time_zone=AMS)
    assert not ours.ok and ours.expected.total_cost.excl == D("0.55")
    assert check_cdr(cdr, time_zone=AMS, policy=literal).ok


def test_check_periods_without_tariff_id_inherit():
    d = _cdr_dict()
    for cp in d["charging_periods"][1:]:
        cp.pop("tariff_id")
    assert check_cdr(CDR.from_wire(d), time_zone=AMS).ok
    d["charging_periods"][0]["tariff_id"] = "unknown"
    with pytest.raises(NoApplicableTariff, match="unknown"):
        check_cdr(CDR.from_wire(d), time_zone=AMS)


def test_money_in_the_built_cdr_is_decimal_exact():
    cdr, _ = build_cdr(CASE_A, fx.T4, LOCATION, time_zone=AMS)
    assert isinstance(cdr.total_cost.excl_vat, Decimal)
    assert b"9.0" in cdr.to_json_bytes() or b'"excl_vat":9' in cdr.to_json_bytes()
