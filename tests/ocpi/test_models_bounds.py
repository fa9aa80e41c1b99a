"""Values no charger has (issue 8, §4.6): every physical quantity, duration,
percentage and amount has a sane range (docs/limits.md); negative only where
the spec allows it; time_zone is an IANA zone name."""

from __future__ import annotations

import copy
import typing
from decimal import Decimal
from typing import Any

import annotated_types
import pytest

from evroam.ocpi import (
    cdrs,
    chargingprofiles,
    commands,
    common,
    credentials,
    hubclientinfo,
    locations,
    payments,
    sessions,
    tariffs,
    tokens,
    versions,
)
from evroam.ocpi.base import OcpiModel
from evroam.ocpi.cdrs import CDR, CdrDimension
from evroam.ocpi.chargingprofiles import ChargingProfile
from evroam.ocpi.commands import CommandResponse
from evroam.ocpi.locations import Connector, EnergySource, Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import Bounds
from tests.ocpi.helpers import assert_rejected

T = "2026-01-01T00:00:00Z"
CONNECTOR = {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
             "max_voltage": 230, "max_amperage": 32, "max_electric_power": 22000, "last_updated": T}
LOCATION = {"country_code": "NL", "party_id": "CPO", "id": "L1", "publish": True, "address": "Main St 1",
            "city": "Utrecht", "country": "NLD", "coordinates": {"latitude": "52.090000", "longitude": "5.120000"},
            "time_zone": "Europe/Amsterdam", "last_updated": T,
            "evses": [{"uid": "E1", "status": "AVAILABLE", "connectors": [CONNECTOR], "last_updated": T}]}
TOKEN = {"country_code": "DE", "party_id": "EMS", "uid": "U1", "type": "RFID", "contract_id": "DE-EMS-1"}
SESSION = {"country_code": "NL", "party_id": "CPO", "id": "S1", "start_date_time": T, "kwh": 5, "cdr_token": TOKEN,
           "auth_method": "WHITELIST", "location_id": "L1", "evse_uid": "E1", "connector_id": "1",
           "currency": "EUR", "status": "ACTIVE", "last_updated": T}
CDR_DOC = {
    "country_code": "NL", "party_id": "CPO", "id": "C1", "start_date_time": T, "end_date_time": "2026-01-01T01:00:00Z",
    "cdr_token": TOKEN, "auth_method": "WHITELIST",
    "cdr_location": {"id": "L1", "address": "Main St 1", "city": "Utrecht", "country": "NLD",
                     "coordinates": {"latitude": "52.090000", "longitude": "5.120000"}, "evse_uid": "E1",
                     "evse_id": "NL*CPO*E1", "connector_id": "1", "connector_standard": "IEC_62196_T2",
                     "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
    "currency": "EUR", "charging_periods": [{"start_date_time": T, "dimensions": [{"type": "ENERGY", "volume": 10}]}],
    "total_cost": {"excl_vat": 2.5, "incl_vat": 3}, "total_energy": 10, "total_time": 1, "last_updated": T,
}
TARIFF = {"country_code": "NL", "party_id": "CPO", "id": "T1", "currency": "EUR", "last_updated": T,
          "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21, "step_size": 1}]}]}


def with_(doc: dict, path: str, value: Any) -> dict:
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    node[int(last) if last.isdigit() else last] = value
    return out


# --- the issue's own cases ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 10**30, 5001])
def test_connector_voltage(value: int) -> None:
    assert_rejected(Connector, {**CONNECTOR, "max_voltage": value}, "max_voltage")


def test_connector_amperage_and_power() -> None:
    assert_rejected(Connector, {**CONNECTOR, "max_amperage": -1}, "max_amperage")
    assert_rejected(Connector, {**CONNECTOR, "max_electric_power": 10**9}, "max_electric_power")
    # What MCS chargers really offer fits.
    Connector.from_wire({**CONNECTOR, "max_voltage": 1250, "max_amperage": 3000, "max_electric_power": 3_750_000})


@pytest.mark.parametrize("kwh", [-5, 10**30])
def test_session_kwh(kwh: int) -> None:
    assert_rejected(Session, {**SESSION, "kwh": kwh}, "kwh")


@pytest.mark.parametrize("zone", ["../../../../etc/passwd", "Europe/Atlantis", "localtime", "europe/amsterdam",
                                  "x" * 256, ""])
def test_time_zone_is_an_iana_name(zone: str) -> None:
    assert_rejected(Location, {**LOCATION, "time_zone": zone}, "time_zone")


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/Argentina/Buenos_Aires", "UTC", "Etc/GMT+2"])
def test_real_time_zones_pass(zone: str) -> None:
    assert Location.from_wire({**LOCATION, "time_zone": zone}).time_zone == zone


# --- negative where the spec allows it, and only there ----------------------------------------------


def test_credit_cdrs_keep_their_negated_totals() -> None:
    credit = {**CDR_DOC, "id": "C1-C", "credit": True, "credit_reference_id": "C1",
              "total_cost": {"excl_vat": -2.5, "incl_vat": -3}, "total_energy_cost": {"excl_vat": -2.5}}
    assert CDR.from_wire(credit).total_cost.excl_vat == Decimal("-2.5")
    assert_rejected(CDR, {**CDR_DOC, "total_cost": {"excl_vat": -2.5}}, "total_cost")
    # A credit negates costs only; the energy and time it repeats are what was charged.
    assert_rejected(CDR, {**credit, "total_energy": -10}, "total_energy")
    assert_rejected(CDR, {**credit, "total_time": -1}, "total_time")
    assert_rejected(CDR, {**credit, "total_cost": {"excl_vat": -(10**10)}}, "total_cost.excl_vat")


@pytest.mark.parametrize(("kind", "volume"), [("ENERGY", -5), ("MIN_CURRENT", -16), ("MIN_POWER", -11),
                                              ("CURRENT", -16), ("POWER", -11)])
def test_flow_back_to_the_grid_is_negative(kind: str, volume: int) -> None:
    assert CdrDimension.from_wire({"type": kind, "volume": volume}).volume == volume


@pytest.mark.parametrize(("kind", "volume"), [
    ("ENERGY_IMPORT", -1), ("ENERGY_EXPORT", -1), ("MAX_CURRENT", -1), ("MAX_POWER", -1), ("TIME", -0.5),
    ("PARKING_TIME", -1), ("RESERVATION_TIME", -1), ("STATE_OF_CHARGE", 101), ("ENERGY", 10**6),
    ("MIN_POWER", -(10**5)), ("TIME", 10**5),
])
def test_dimension_volumes_out_of_range(kind: str, volume: float) -> None:
    text = assert_rejected(CdrDimension, {"type": kind, "volume": volume}, "volume")
    assert kind in text


def test_tariff_amounts_and_percentages() -> None:
    pc = "elements.0.price_components.0"
    for field, value in (("price", -0.25), ("price", 10**10), ("vat", 101), ("vat", -1), ("step_size", -1),
                         ("step_size", 10**9)):
        assert_rejected(Tariff, with_(TARIFF, f"{pc}.{field}", value), f"{pc}.{field}")
    restricted = with_(TARIFF, "elements.0.restrictions", {"max_power": 10**5})
    assert_rejected(Tariff, restricted, "elements.0.restrictions.max_power")
    assert_rejected(Tariff, {**TARIFF, "min_price": {"excl_vat": -1}}, "min_price.excl_vat")
    assert_rejected(EnergySource, {"source": "SOLAR", "percentage": 101}, "percentage")


def test_charging_rates_and_timeouts() -> None:
    profile = {"charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 32.5}]}
    ChargingProfile.from_wire(profile)
    assert_rejected(ChargingProfile, with_(profile, "charging_profile_period.0.limit", 20000), "charging_profile_period.0.limit")
    assert_rejected(ChargingProfile, with_(profile, "charging_profile_period.0.limit", -1), "charging_profile_period.0.limit")
    assert_rejected(ChargingProfile, with_(profile, "charging_profile_period.0.start_period", -1),
                    "charging_profile_period.0.start_period")
    # The same 20 kW is fine in watts.
    ChargingProfile.from_wire({**with_(profile, "charging_profile_period.0.limit", 20000), "charging_rate_unit": "W"})
    assert_rejected(CommandResponse, {"result": "ACCEPTED", "timeout": -1}, "timeout")
    assert_rejected(CommandResponse, {"result": "ACCEPTED", "timeout": 10**12}, "timeout")


# --- every numeric field is bounded ---------------------------------------------------------------

MODULES = [cdrs, chargingprofiles, commands, common, credentials, hubclientinfo, locations, payments, sessions,
           tariffs, tokens, versions]
# Bounded by a model validator that knows the dimension type (cdrs.VOLUME_BOUNDS).
BY_VALIDATOR = {(CdrDimension, "volume")}


def _numeric_meta(tp: Any, meta: list[Any]) -> tuple[type, list[Any]] | None:
    if typing.get_origin(tp) is typing.Annotated:
        base, *inner = typing.get_args(tp)
        return _numeric_meta(base, [*inner, *meta])
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args:
        return _numeric_meta(args[0], meta)
    return (tp, meta) if tp in (int, Decimal) else None


def _bounded(meta: list[Any]) -> bool:
    has = {type(m) for m in meta} | {type(getattr(m, "func", None)) for m in meta}
    return Bounds in has or {annotated_types.Ge, annotated_types.Le} <= has


def test_every_numeric_field_has_bounds() -> None:
    models = {obj for mod in MODULES for obj in vars(mod).values()
              if isinstance(obj, type) and issubclass(obj, OcpiModel) and obj.__module__ == mod.__name__}
    unbounded = []
    for model in models:
        for name, field in model.model_fields.items():
            found = _numeric_meta(field.annotation, list(field.metadata))
            if found and not _bounded(found[1]) and (model, name) not in BY_VALIDATOR:
                unbounded.append(f"{model.__name__}.{name}")
    assert unbounded == []
    assert len(models) > 40  # the discovery found the models
