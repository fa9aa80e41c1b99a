"""Hand-built tariffs equivalent to the OCPI 2.2.1 examples, and helpers.

The golden tests run on these, so they do not depend on ../shared; where the
spec example files are present the same cases also run on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from evroam.ocpi.cdrs import CdrLocation
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff

WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]


def pc(type_: str, price: float, vat: float | None = None, step: int = 1) -> dict[str, Any]:
    d: dict[str, Any] = {"type": type_, "price": price, "step_size": step}
    if vat is not None:
        d["vat"] = vat
    return d


def el(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        d["restrictions"] = restrictions
    return d


def tariff(tid: str, *elements: dict[str, Any], **extra: Any) -> Tariff:
    return Tariff.from_wire({
        "country_code": "DE", "party_id": "ALL", "id": tid, "currency": "EUR",
        "elements": list(elements), "last_updated": "2018-12-17T11:16:55Z", **extra,
    })


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: str = "Europe/Amsterdam") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def D(x: object) -> Decimal:
    return Decimal(str(x))


# --- the spec examples (mod_tariffs.asciidoc, 2.2.1) ---------------------------------------

T1 = tariff("12", el(pc("TIME", 2.00, 10.0, 60)))
T2 = tariff("12", el(pc("TIME", 1.90, 5.2, 300)), type="AD_HOC_PAYMENT")
T3 = tariff("13", el(pc("FLAT", 0.50, 20.0), pc("ENERGY", 0.25, 10.0, 100)), type="PROFILE_CHEAP",
            tariff_alt_url="https://company.com/tariffs/13")
T4 = tariff(
    "14",
    el(pc("FLAT", 2.50, 15.0)),
    el(pc("TIME", 1.00, 20.0, 900), max_current=32.0),
    el(pc("TIME", 2.00, 20.0, 600), min_current=32.0, day_of_week=WEEKDAYS),
    el(pc("TIME", 1.25, 20.0, 600), min_current=32.0, day_of_week=["SATURDAY", "SUNDAY"]),
    el(pc("PARKING_TIME", 5.0, 10.0, 300), start_time="09:00", end_time="18:00", day_of_week=WEEKDAYS),
    el(pc("PARKING_TIME", 6.0, 10.0, 300), start_time="10:00", end_time="17:00", day_of_week=["SATURDAY"]),
    type="REGULAR",
)
T5 = tariff("15", el(pc("FLAT", 0.00, None, 0)))
T6 = tariff("16", el(pc("FLAT", 0.50, 20.0), pc("ENERGY", 0.25, 10.0)),
            max_price={"excl_vat": 10.0, "incl_vat": 11.0}, end_date_time="2019-06-30T23:59:59Z")
T7 = tariff(
    "52",
    el(pc("PARKING_TIME", 0.0, None, 60), min_duration=0, max_duration=3600),
    el(pc("PARKING_TIME", 2.0, None, 60), min_duration=3600, max_duration=10800),
    el(pc("PARKING_TIME", 3.0, None, 60), min_duration=10800),
    el(pc("ENERGY", 0.0, None, 1), max_kwh=1.0),
    el(pc("ENERGY", 0.2, None, 1), min_kwh=1.0),
)
T8 = tariff("16", el(pc("ENERGY", 0.25, 10.0)))
T9 = tariff("17", el(pc("FLAT", 0.50, 20.0), pc("ENERGY", 0.25, 10.0)))
T10 = tariff("18", el(pc("FLAT", 0.50, 20.0), pc("ENERGY", 0.25, 10.0), pc("PARKING_TIME", 2.0, 20.0, 900)))
T12 = tariff("20", el(pc("ENERGY", 0.25, 10.0)), min_price={"excl_vat": 0.50, "incl_vat": 0.55})
T13 = tariff("21", el(pc("TIME", 3.00, 10.0, 60), pc("PARKING_TIME", 5.0, 20.0, 300)))
T14 = tariff(
    "22",
    el(pc("TIME", 1.20, None, 1800), pc("PARKING_TIME", 1.0, None, 900), start_time="00:00", end_time="17:00"),
    el(pc("TIME", 2.40, None, 900), pc("PARKING_TIME", 1.0, None, 900), start_time="17:00", end_time="20:00"),
    el(pc("TIME", 2.40, None, 900), start_time="20:00", end_time="00:00"),
)
_CHARGE = (el(pc("FLAT", 0.50, 20.0), pc("ENERGY", 0.25, 10.0)),)
T15 = tariff("20", el(pc("TIME", 5.00, 20.0, 60), reservation="RESERVATION"), *_CHARGE)
T16 = tariff("20", el(pc("FLAT", 2.00, 20.0), pc("TIME", 5.00, 20.0, 300), reservation="RESERVATION"), *_CHARGE)
T17 = tariff(
    "20",
    el(pc("FLAT", 4.00, 20.0), reservation="RESERVATION_EXPIRES"),
    el(pc("TIME", 2.00, 20.0, 600), reservation="RESERVATION"),
    *_CHARGE,
)
T18 = tariff(
    "20",
    el(pc("TIME", 6.00, 20.0, 600), reservation="RESERVATION_EXPIRES"),
    el(pc("TIME", 3.00, 20.0, 600), reservation="RESERVATION"),
    *_CHARGE,
)
MAX_POWER = tariff(
    "1",
    el(pc("ENERGY", 0.20, 20.0), max_power=16.0),
    el(pc("ENERGY", 0.35, 20.0), max_power=32.0),
    el(pc("ENERGY", 0.50, 20.0)),
    type="REGULAR",
)
MAX_DURATION = tariff(
    "2",
    el(pc("ENERGY", 0.00, 20.0), max_duration=1800),
    el(pc("ENERGY", 0.25, 20.0), max_duration=3600),
    el(pc("ENERGY", 0.40, 20.0)),
    type="REGULAR",
)
CDR_EXAMPLE_TARIFF = tariff("12", el(pc("TIME", 2.00, 10.0, 300)))

# Which spec file each hand-built tariff stands for.
SPEC_FILES = {
    "T1": "tariff_1_simple_2hour", "T2": "tariff_2_alt_text", "T3": "tariff_3_alt_url", "T4": "tariff_4_complex",
    "T5": "tariff_5_free_of_charge", "T6": "tariff_6_025kwh_start_max_price", "T7": "tariff_7_first_hour_kwh_free",
    "T8": "tariff_8_simple_025kwh", "T9": "tariff_9_025kwh_start", "T10": "tariff_10_025kwh_parking_start",
    "T12": "tariff_12_025kwh_min_price", "T13": "tariff_13_simple_3hour_5parking", "T14": "tariff_14_step_size",
    "T15": "tariff_15_reservation_5_euro_per_hour", "T16": "tariff_16_reservation_2_euro_fee_5_euro_per_hour",
    "T17": "tariff_17_reservation_with_expire_fee", "T18": "tariff_18_reservation_with_expire_time",
    "MAX_POWER": "tariffrestriction_example_max_power", "MAX_DURATION": "tariffrestriction_example_max_duration",
}
HAND_BUILT = {name: globals()[name] for name in SPEC_FILES}


def rounded_to(value: Decimal, example: str) -> Decimal:
    """`value` rounded half-up to the precision the spec printed `example` with."""
    return value.quantize(Decimal(example), rounding="ROUND_HALF_UP")


# --- a Session and where it happened, for the CDR builder ----------------------------------------

TOKEN = {"country_code": "NL", "party_id": "EMS", "uid": "04A1B2C3", "type": "RFID", "contract_id": "NL-EMS-C00001"}
LOCATION = CdrLocation.from_wire({
    "id": "LOC1", "name": "Stationsplein", "address": "Stationsplein 1", "city": "Utrecht", "postal_code": "3511",
    "country": "NLD", "coordinates": {"latitude": "52.089210", "longitude": "5.110150"}, "evse_uid": "EVSE-1",
    "evse_id": "NL*EVR*E0001", "connector_id": "1", "connector_standard": "IEC_62196_T2",
    "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE",
})


def session(periods, *, start="2024-05-13T07:30:00Z", end="2024-05-13T11:15:00Z", kwh=20.0, sid="S-1"):
    return Session.from_wire({
        "country_code": "NL", "party_id": "EVR", "id": sid, "start_date_time": start, "end_date_time": end,
        "kwh": kwh, "cdr_token": TOKEN, "auth_method": "AUTH_REQUEST", "authorization_reference": "AUTH-1",
        "location_id": "LOC1", "evse_uid": "EVSE-1", "connector_id": "1", "currency": "EUR",
        "charging_periods": periods, "status": "COMPLETED", "last_updated": end,
    })


# tariff_4 case (a) as a Session: Monday 09:30 local, 165 min at 16 A, then 42 min parked.
CASE_A = session(
    [
        {"start_date_time": "2024-05-13T07:30:00Z",
         "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "MAX_CURRENT", "volume": 16}]},
        {"start_date_time": "2024-05-13T10:15:00Z", "dimensions": [{"type": "PARKING_TIME", "volume": 0.7}]},
    ],
    end="2024-05-13T10:57:00Z",
)
