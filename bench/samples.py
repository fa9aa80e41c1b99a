"""OCPI objects for the benchmarks, as a CPO publishes them."""

from __future__ import annotations


def location(i: int, evses: int = 2, oid: str | None = None) -> dict:
    """Location number `i` (id LOC000123 unless `oid`), with `evses` EVSEs of one connector each."""
    return {
        "country_code": "NL", "party_id": "EVR", "id": oid or f"LOC{i:06d}", "publish": True,
        "name": f"Charging hub {i}", "address": f"Stationsstraat {i % 300}", "city": "Utrecht",
        "postal_code": "3511 AB", "country": "NLD",
        "coordinates": {"latitude": f"52.{i % 100000:05d}", "longitude": f"5.{(i * 7) % 100000:05d}"},
        "parking_type": "ON_STREET", "evses": [_evse(i, e) for e in range(evses)], "time_zone": "Europe/Amsterdam",
        "last_updated": "2026-01-01T00:00:00Z",
    }


def _evse(i: int, e: int) -> dict:
    return {
        "uid": f"EVSE-{i}-{e}", "evse_id": f"NL*EVR*E{i:06d}*{e}", "status": "AVAILABLE",
        "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
        "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                        "max_voltage": 230, "max_amperage": 32, "max_electric_power": 22000,
                        "tariff_ids": ["T-AC"], "last_updated": "2026-01-01T00:00:00Z"}],
        "physical_reference": f"{e + 1}", "last_updated": "2026-01-01T00:00:00Z",
    }
