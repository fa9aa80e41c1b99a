"""Tariff, Session and CDR object models (OCPI 2.2.1)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from evroam.ocpi.base import error_text
from evroam.ocpi.cdrs import CDR, CdrDimensionType, CdrPrice
from evroam.ocpi.common import Price
from evroam.ocpi.sessions import ChargingPreferences, ChargingPreferencesResponse, Session, SessionStatus
from evroam.ocpi.tariffs import (
    DayOfWeek,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffType,
)
from tests.examples import load_example

# --- hand-built valid objects ---------------------------------------------------------

TARIFF = {
    "country_code": "DE",
    "party_id": "ALL",
    "id": "T-1",
    "currency": "EUR",
    "type": "REGULAR",
    "tariff_alt_text": [{"language": "en", "text": "2 euro per hour"}],
    "min_price": {"excl_vat": 0.5, "incl_vat": 0.55},
    "elements": [
        {
            "price_components": [{"type": "TIME", "price": 2.0, "vat": 10.0, "step_size": 300}],
            "restrictions": {
                "start_time": "17:00",
                "end_time": "00:00",
                "start_date": "2024-01-01",
                "day_of_week": ["MONDAY", "SATURDAY"],
                "min_kwh": 1.5,
                "max_current": 32,
                "min_duration": 0,
                "max_duration": 3600,
            },
        },
        {"price_components": [{"type": "FLAT", "price": 0.0, "step_size": 0}]},
    ],
    "start_date_time": "2024-01-01T00:00:00Z",
    "energy_mix": {"is_green_energy": True},
    "last_updated": "2024-01-01T00:00:00Z",
}

CDR_TOKEN = {"country_code": "NL", "party_id": "TST", "uid": "012345678", "type": "RFID", "contract_id": "NL-TST-C1"}

SESSION = {
    "country_code": "BE",
    "party_id": "BEC",
    "id": "101",
    "start_date_time": "2015-06-29T22:39:09Z",
    "end_date_time": "2015-06-29T23:50:16Z",
    "kwh": 41.0,
    "cdr_token": CDR_TOKEN,
    "auth_method": "WHITELIST",
    "location_id": "LOC1",
    "evse_uid": "3256",
    "connector_id": "1",
    "currency": "EUR",
    "charging_periods": [
        {
            "start_date_time": "2015-06-29T22:39:09Z",
            "dimensions": [{"type": "ENERGY", "volume": 0.12}, {"type": "CURRENT", "volume": 30}],
        },
    ],
    "total_cost": {"excl_vat": 8.5, "incl_vat": 9.35},
    "status": "COMPLETED",
    "last_updated": "2015-06-29T23:50:17Z",
}

CDR_DICT = {
    "country_code": "BE",
    "party_id": "BEC",
    "id": "12345",
    "start_date_time": "2015-06-29T21:39:09Z",
    "end_date_time": "2015-06-29T23:37:32Z",
    "session_id": "101",
    "cdr_token": CDR_TOKEN,
    "auth_method": "WHITELIST",
    "cdr_location": {
        "id": "LOC1",
        "name": "Gent Zuid",
        "address": "F.Rooseveltlaan 3A",
        "city": "Gent",
        "postal_code": "9000",
        "country": "BEL",
        "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
        "evse_uid": "3256",
        "evse_id": "BE*BEC*E041503003",
        "connector_id": "1",
        "connector_standard": "IEC_62196_T2",
        "connector_format": "SOCKET",
        "connector_power_type": "AC_1_PHASE",
    },
    "currency": "EUR",
    "tariffs": [
        {
            "country_code": "BE",
            "party_id": "BEC",
            "id": "12",
            "currency": "EUR",
            "elements": [{"price_components": [{"type": "TIME", "price": 2.0, "vat": 10.0, "step_size": 300}]}],
            "last_updated": "2015-02-02T14:15:01Z",
        }
    ],
    "charging_periods": [
        {"start_date_time": "2015-06-29T21:39:09Z", "dimensions": [{"type": "TIME", "volume": 1.973}], "tariff_id": "12"}
    ],
    "signed_data": {
        "encoding_method": "OCMF",
        "signed_values": [{"nature": "Start", "plain_data": "x", "signed_data": "eA=="}],
    },
    "total_cost": {"excl_vat": 4.0, "incl_vat": 4.4},
    "total_energy": 15.342,
    "total_time": 1.973,
    "total_time_cost": {"excl_vat": 4.0, "incl_vat": 4.4},
    "last_updated": "2015-06-29T22:01:13Z",
}


def _fails(model, data, field: str) -> str:
    with pytest.raises(ValidationError) as exc:
        model.from_wire(data)
    text = error_text(exc.value)
    assert field in text, text
    return text


# --- valid parses -------------------------------------------------------------------------


def test_tariff_parses_with_typed_fields():
    t = Tariff.from_wire(TARIFF)
    assert t.type is TariffType.REGULAR
    r = t.elements[0].restrictions
    assert r.day_of_week == [DayOfWeek.MONDAY, DayOfWeek.SATURDAY]
    assert r.min_kwh == Decimal("1.5") and isinstance(r.max_current, Decimal)
    assert t.elements[1].price_components[0].vat is None  # absent VAT stays absent, not 0
    assert t.elements[0].price_components[0].type is TariffDimensionType.TIME
    assert isinstance(t.min_price, Price)


def test_session_and_cdr_parse():
    s = Session.from_wire(SESSION)
    assert s.status is SessionStatus.COMPLETED and s.kwh == Decimal("41.0")
    assert s.charging_periods[0].dimensions[1].type is CdrDimensionType.CURRENT
    c = CDR.from_wire(CDR_DICT)
    assert c.total_cost.excl_vat == Decimal("4.0") and c.tariffs[0].id == "12"
    assert isinstance(c.total_cost, Price)


def test_charging_preferences_and_enums():
    p = ChargingPreferences.from_wire({"profile_type": "FAST", "energy_need": 12.5})
    assert p.to_wire() == {"profile_type": "FAST", "energy_need": 12.5}
    assert ChargingPreferencesResponse("PROFILE_TYPE_NOT_SUPPORTED")
    assert ReservationRestrictionType("RESERVATION_EXPIRES")


def test_unknown_fields_are_collected_not_rejected():
    unknown: set[str] = set()
    data = dict(TARIFF, tax_included="YES")
    Tariff.from_wire(data, unknown=unknown)
    assert unknown == {"Tariff.tax_included"}


# --- rejections name the field ------------------------------------------------------------


def test_missing_required_field():
    data = dict(TARIFF)
    del data["last_updated"]
    _fails(Tariff, data, "last_updated")
    data = dict(SESSION)
    del data["kwh"]
    _fails(Session, data, "kwh")
    data = dict(CDR_DICT)
    del data["cdr_location"]
    _fails(CDR, data, "cdr_location")


def test_empty_plus_lists_rejected():
    _fails(Tariff, dict(TARIFF, elements=[]), "elements")
    _fails(CDR, dict(CDR_DICT, charging_periods=[]), "charging_periods")


def test_wrong_types_rejected():
    _fails(Tariff, dict(TARIFF, min_price={"excl_vat": "0.50"}), "min_price.excl_vat")
    data = copy.deepcopy(TARIFF)
    data["elements"][0]["price_components"][0]["step_size"] = 300.0
    _fails(Tariff, data, "elements.0.price_components.0.step_size")
    _fails(Session, dict(SESSION, kwh="41"), "kwh")
    _fails(CDR, dict(CDR_DICT, credit="true"), "credit")


def test_over_long_strings_rejected():
    _fails(Tariff, dict(TARIFF, id="x" * 37), "id")
    _fails(Session, dict(SESSION, id="x" * 37), "id")
    loc = dict(CDR_DICT["cdr_location"], address="a" * 46)
    _fails(CDR, dict(CDR_DICT, cdr_location=loc), "cdr_location.address")
    _fails(CDR, dict(CDR_DICT, remark="r" * 256), "remark")


def test_wrong_case_enums_rejected():
    _fails(Tariff, dict(TARIFF, type="regular"), "type")
    data = copy.deepcopy(TARIFF)
    data["elements"][0]["restrictions"]["day_of_week"] = ["Monday"]
    _fails(Tariff, data, "elements.0.restrictions.day_of_week.0")
    _fails(Session, dict(SESSION, status="completed"), "status")
    _fails(CDR, dict(CDR_DICT, auth_method="whitelist"), "auth_method")


def test_datetime_with_offset_rejected():
    _fails(Tariff, dict(TARIFF, last_updated="2024-01-01T00:00:00+00:00"), "last_updated")
    _fails(Session, dict(SESSION, start_date_time="2015-06-29T22:39:09+02:00"), "start_date_time")
    _fails(CDR, dict(CDR_DICT, end_date_time="2015-06-29T23:37:32+01:00"), "end_date_time")


def test_bad_time_of_day_and_date_rejected():
    data = copy.deepcopy(TARIFF)
    data["elements"][0]["restrictions"]["start_time"] = "24:00"
    _fails(Tariff, data, "elements.0.restrictions.start_time")
    data = copy.deepcopy(TARIFF)
    data["elements"][0]["restrictions"]["end_date"] = "2024/01/01"
    _fails(Tariff, data, "elements.0.restrictions.end_date")


# --- cross-field rules --------------------------------------------------------------------


def test_cdr_id_length_depends_on_credit():
    _fails(CDR, dict(CDR_DICT, id="x" * 37), "id")
    ok = CDR.from_wire(dict(CDR_DICT, id="x" * 39, credit=True, credit_reference_id="x" * 36,
                            total_cost={"excl_vat": -4.0, "incl_vat": -4.4}))
    assert ok.total_cost.excl_vat == Decimal("-4.0") and isinstance(ok.total_cost, CdrPrice)
    _fails(CDR, dict(CDR_DICT, id="x" * 40, credit=True, credit_reference_id="y"), "id")


def test_credit_cdr_needs_reference():
    _fails(CDR, dict(CDR_DICT, credit=True), "credit_reference_id")


def test_negative_totals_only_on_credit_cdrs():
    _fails(CDR, dict(CDR_DICT, total_cost={"excl_vat": -1}), "total_cost")
    _fails(CDR, dict(CDR_DICT, total_time_cost={"excl_vat": 1, "incl_vat": -1}), "total_time_cost")


def test_session_only_dimension_rejected_in_cdr():
    periods = [{"start_date_time": "2015-06-29T21:39:09Z", "dimensions": [{"type": "STATE_OF_CHARGE", "volume": 50}]}]
    _fails(CDR, dict(CDR_DICT, charging_periods=periods), "charging_periods.0.dimensions.0.type")


def test_state_of_charge_range():
    periods = [{"start_date_time": "2015-06-29T21:39:09Z", "dimensions": [{"type": "STATE_OF_CHARGE", "volume": 101}]}]
    _fails(Session, dict(SESSION, charging_periods=periods), "volume")


def test_reservation_element_only_flat_and_time():
    data = copy.deepcopy(TARIFF)
    data["elements"][0]["restrictions"] = {"reservation": "RESERVATION"}
    data["elements"][0]["price_components"].append({"type": "ENERGY", "price": 0.2, "step_size": 1})
    _fails(Tariff, data, "price_components.1.type")


def test_negative_vat_and_step_rejected():
    data = copy.deepcopy(TARIFF)
    data["elements"][0]["price_components"][0]["vat"] = -1
    _fails(Tariff, data, "elements.0.price_components.0.vat")
    data = copy.deepcopy(TARIFF)
    data["elements"][0]["price_components"][0]["step_size"] = -5
    _fails(Tariff, data, "elements.0.price_components.0.step_size")


# --- spec examples ------------------------------------------------------------------------

TARIFF_EXAMPLES = [
    "tariff_1_simple_2hour", "tariff_2_alt_text", "tariff_3_alt_url", "tariff_4_complex",
    "tariff_5_free_of_charge", "tariff_6_025kwh_start_max_price", "tariff_7_first_hour_kwh_free",
    "tariff_8_simple_025kwh", "tariff_9_025kwh_start", "tariff_10_025kwh_parking_start",
    "tariff_11_not_possible_alt_text", "tariff_12_025kwh_min_price", "tariff_13_simple_3hour_5parking",
    "tariff_14_step_size", "tariff_15_reservation_5_euro_per_hour",
    "tariff_16_reservation_2_euro_fee_5_euro_per_hour", "tariff_17_reservation_with_expire_fee",
    "tariff_18_reservation_with_expire_time", "tariffrestriction_example_max_duration",
    "tariffrestriction_example_max_power",
]


@pytest.mark.parametrize("name", TARIFF_EXAMPLES)
def test_spec_tariff_examples_parse(name):
    raw = load_example(f"{name}.json")
    t = Tariff.from_wire(raw)
    assert json.loads(t.to_json_bytes()) == raw


def test_spec_tariff_put_example_lacks_last_updated():
    _fails(Tariff, load_example("tariff_put_example.json"), "last_updated")


@pytest.mark.parametrize(
    ("name", "model"),
    [("cdr_example", CDR), ("session_example_1_simple_start", Session), ("session_example_2_short_finished", Session)],
)
def test_spec_cdr_and_session_examples(name, model):
    raw = load_example(f"{name}.json")
    # The 2.2.1 examples predate the required cdr_token.country_code/party_id.
    _fails(model, raw, "cdr_token.country_code")
    raw["cdr_token"].update(country_code="NL", party_id="TST")
    obj = model.from_wire(raw)
    assert obj.to_json_bytes()


# --- round trip -----------------------------------------------------------------------------

_money = st.integers(min_value=0, max_value=10**6).map(lambda i: i / 100)
_small = st.integers(min_value=0, max_value=10**5).map(lambda i: i / 1000)
_ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*", min_size=1, max_size=36)
_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=40)
_dt = st.datetimes(
    min_value=__import__("datetime").datetime(2000, 1, 1), max_value=__import__("datetime").datetime(2099, 1, 1)
).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{d.microsecond // 1000:03d}" if d.microsecond % 2 else "") + "Z")
_hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))


def _opt(strategy):
    return st.one_of(st.none(), strategy)


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


_price = st.builds(lambda e, i: _drop_none({"excl_vat": e, "incl_vat": i}), _money, _opt(_money))
_restrictions = st.builds(
    lambda *v: _drop_none(dict(zip(
        ["start_time", "end_time", "start_date", "min_kwh", "max_kwh", "min_current", "max_power",
         "min_duration", "max_duration", "day_of_week"], v, strict=True))),
    _opt(_hhmm), _opt(_hhmm), _opt(st.dates().map(lambda d: d.isoformat()).filter(lambda s: len(s) == 10)),
    _opt(_small), _opt(_small), _opt(_small), _opt(_small),
    _opt(st.integers(0, 10**6)), _opt(st.integers(0, 10**6)),
    _opt(st.lists(st.sampled_from([d.value for d in DayOfWeek]), max_size=7)),
)
_component = st.builds(
    lambda t, p, v, s: _drop_none({"type": t, "price": p, "vat": v, "step_size": s}),
    st.sampled_from(["ENERGY", "FLAT", "PARKING_TIME", "TIME"]), _money, _opt(_small), st.integers(0, 3600),
)
_element = st.builds(
    lambda pcs, r: _drop_none({"price_components": pcs, "restrictions": r}),
    st.lists(_component, min_size=1, max_size=4), _opt(_restrictions),
)
_tariff = st.builds(
    lambda i, typ, mn, mx, els, sdt, lu: _drop_none({
        "country_code": "DE", "party_id": "ALL", "id": i, "currency": "EUR", "type": typ,
        "min_price": mn, "max_price": mx, "elements": els, "start_date_time": sdt, "last_updated": lu,
    }),
    _ids, _opt(st.sampled_from([t.value for t in TariffType])), _opt(_price), _opt(_price),
    st.lists(_element, min_size=1, max_size=4), _opt(_dt), _dt,
)
_dimension = st.builds(
    lambda t, v: {"type": t, "volume": v},
    st.sampled_from(["ENERGY", "MAX_CURRENT", "MIN_CURRENT", "MAX_POWER", "MIN_POWER", "PARKING_TIME",
                     "RESERVATION_TIME", "TIME"]),
    _small,
)
_period = st.builds(
    lambda s, dims, tid: _drop_none({"start_date_time": s, "dimensions": dims, "tariff_id": tid}),
    _dt, st.lists(_dimension, min_size=1, max_size=4), _opt(_ids),
)
_token = st.builds(
    lambda uid, typ: {"country_code": "NL", "party_id": "TST", "uid": uid, "type": typ, "contract_id": uid},
    _ids, st.sampled_from(["AD_HOC_USER", "APP_USER", "OTHER", "RFID"]),
)
_session = st.builds(
    lambda i, s, e, kwh, tok, periods, cost, status, name: _drop_none({
        "country_code": "BE", "party_id": "BEC", "id": i, "start_date_time": s, "end_date_time": e, "kwh": kwh,
        "cdr_token": tok, "auth_method": "COMMAND", "location_id": "LOC1", "evse_uid": "#NA", "connector_id": "1",
        "meter_id": name, "currency": "EUR", "charging_periods": periods, "total_cost": cost, "status": status,
        "last_updated": s,
    }),
    _ids, _dt, _opt(_dt), _small, _token, _opt(st.lists(_period, max_size=3)), _opt(_price),
    st.sampled_from([s.value for s in SessionStatus]), _opt(_text),
)
_cdr = st.builds(
    lambda i, s, tok, tariffs, periods, costs, energy, time, name: _drop_none({
        **{k: v for k, v in CDR_DICT.items() if k not in ("signed_data",)},
        "id": i, "start_date_time": s, "end_date_time": s, "cdr_token": tok, "tariffs": tariffs,
        "charging_periods": periods, "total_cost": costs[0], "total_time_cost": costs[1],
        "total_parking_cost": costs[2], "total_energy": energy, "total_time": time, "remark": name,
    }),
    _ids, _dt, _token, _opt(st.lists(_tariff, max_size=2)), st.lists(_period, min_size=1, max_size=3),
    st.tuples(_price, _opt(_price), _opt(_price)), _small, _small, _opt(_text),
)


def _round_trip(model, data):
    first = model.from_wire(data).to_json_bytes()
    again = model.from_wire(first).to_json_bytes()
    assert first == again
    assert b"null" not in first


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tariff)
def test_tariff_round_trip(data):
    _round_trip(Tariff, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_session)
def test_session_round_trip(data):
    _round_trip(Session, data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cdr)
def test_cdr_round_trip(data):
    _round_trip(CDR, data)
