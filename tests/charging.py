"""Charging sessions on a Monday morning, for the Sessions and CDRs tests:
times relative to T0, charging periods, and the Session, Location and
Tariff they happen at (built on tests.builders)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evroam.ocpi.types import format_datetime
from tests import builders

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)  # a Monday


def ts(minutes: float = 0) -> str:
    return format_datetime(T0 + timedelta(minutes=minutes))


def token(cc: str = "DE", pid: str = "EMS", uid: str = "U1") -> dict:
    """A cdr_token: an RFID card."""
    return builders.cdr_token(cc, pid, uid, type="RFID", contract_id=f"{cc}-{pid}-C{uid}")


def period(minutes: float, kwh: float | None = None, parking_h: float | None = None, tariff_id: str | None = None) -> dict:
    dims = []
    if kwh is not None:
        dims.append({"type": "ENERGY", "volume": kwh})
    if parking_h is not None:
        dims.append({"type": "PARKING_TIME", "volume": parking_h})
    p = {"start_date_time": ts(minutes), "dimensions": dims}
    if tariff_id:
        p["tariff_id"] = tariff_id
    return p


def session(sid: str = "S1", *, periods: list | None = None, status: str = "ACTIVE", updated: float = 0,
            cc: str = "NL", pid: str = "CPO", tok: dict | None = None, kwh: float = 0, evse: str = "E1",
            location: str = "LOC1", **extra: object) -> dict:
    doc = builders.session(sid, cc, pid, token=tok or token(), start_date_time=ts(0), kwh=kwh,
                           auth_method="WHITELIST", location_id=location, evse_uid=evse, status=status,
                           last_updated=ts(updated), **extra)
    if periods is not None:
        doc["charging_periods"] = periods
    return doc


def location(lid: str = "LOC1", evses: tuple = (("E1", ("CHARGING_PREFERENCES_CAPABLE",), ("T1",)),),
             tz: str = "Europe/Amsterdam") -> dict:
    """`evses`: (uid, capabilities, tariff ids) of each."""
    def evse(uid: str, caps: tuple, tariffs: tuple) -> dict:
        return builders.evse(uid, evse_id=f"NL*CPO*E{uid}", updated=ts(-600), tariff_ids=tariffs,
                             **({"capabilities": list(caps)} if caps else {}))

    return builders.location(lid, updated=ts(-600), evses=[evse(*e) for e in evses], city="Utrecht",
                             coordinates={"latitude": "52.09074", "longitude": "5.12142"}, time_zone=tz)


def tariff(tid: str = "T1", **over: object) -> dict:
    """Four price components with three VAT rates (digest D1 rules 3, 6, 7)."""
    return {**builders.tariff(tid, updated=ts(-600)),
            "elements": [{"price_components": [
                {"type": "FLAT", "price": 0.50, "vat": 20, "step_size": 1},
                {"type": "ENERGY", "price": 0.25, "vat": 10, "step_size": 1},
                {"type": "TIME", "price": 1.00, "vat": 10, "step_size": 60},
                {"type": "PARKING_TIME", "price": 2.00, "vat": 20, "step_size": 900}]}],
            **over}


def two_evse_location(lid: str = "LOC1") -> dict:
    """E1, and E2 that needs a connector id to start a session on (for commands)."""
    return builders.location(lid, evses=[builders.evse("E1"),
                                         builders.evse("E2", capabilities=["START_SESSION_CONNECTOR_REQUIRED"])])
