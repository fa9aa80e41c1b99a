"""Small valid OCPI objects as wire documents, one builder per object, for
any test. The defaults are a CPO in NL and an eMSP in DE; a test names what
it cares about and takes the rest."""

from __future__ import annotations

from typing import Any

T = "2026-01-01T00:00:00Z"


def connector(cid: str = "1", *, updated: str = T, tariff_ids: tuple[str, ...] | list[str] = ()) -> dict:
    c: dict[str, Any] = {"id": cid, "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                         "max_voltage": 230, "max_amperage": 32, "last_updated": updated}
    if tariff_ids:
        c["tariff_ids"] = list(tariff_ids)
    return c


def evse(uid: str = "E1", *, evse_id: str | None = None, status: str = "AVAILABLE", updated: str = T,
         tariff_ids: tuple[str, ...] | list[str] = (), **fields: Any) -> dict:
    e: dict[str, Any] = {"uid": uid, "status": status, "last_updated": updated,
                         "connectors": [connector(updated=updated, tariff_ids=tariff_ids)], **fields}
    if evse_id is not None:
        e["evse_id"] = evse_id
    return e


def location(lid: str = "LOC1", cc: str = "NL", pid: str = "CPO", *, updated: str = T,
             evses: list[dict] | None = None, **fields: Any) -> dict:
    """One Location with one EVSE `E1` (unless `evses`); `fields` override the rest."""
    return {"country_code": cc, "party_id": pid, "id": lid, "publish": True, "address": "Main 1",
            "city": "Amsterdam", "country": "NLD", "coordinates": {"latitude": "52.37000", "longitude": "4.89000"},
            "time_zone": "Europe/Amsterdam", "evses": evses if evses is not None else [evse(updated=updated)],
            "last_updated": updated, **fields}


def token(uid: str = "APP-42", cc: str = "DE", pid: str = "EMS", **fields: Any) -> dict:
    return {"country_code": cc, "party_id": pid, "uid": uid, "type": "APP_USER", "contract_id": f"{cc}-{pid}-C42",
            "issuer": "eMSP", "valid": True, "whitelist": "ALLOWED", "last_updated": T, **fields}


def tariff(tid: str = "T1", cc: str = "NL", pid: str = "CPO", *, price: float = 0.25, updated: str = T) -> dict:
    """One energy price, no VAT."""
    return {"country_code": cc, "party_id": pid, "id": tid, "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
            "last_updated": updated}


def cdr_token(cc: str = "DE", pid: str = "EMS", uid: str = "TOK1", **fields: Any) -> dict:
    return {"country_code": cc, "party_id": pid, "uid": uid, "type": "APP_USER", "contract_id": f"{cc}-{pid}-C1",
            **fields}


def session(sid: str = "S1", cc: str = "NL", pid: str = "CPO", *, token: dict | None = None, **fields: Any) -> dict:
    """An ACTIVE Session at LOC1/E1/1, started by command with `token`
    (a cdr_token; by default the eMSP's)."""
    return {"country_code": cc, "party_id": pid, "id": sid, "start_date_time": T, "kwh": 0,
            "cdr_token": token or cdr_token(), "auth_method": "COMMAND", "location_id": "LOC1", "evse_uid": "E1",
            "connector_id": "1", "currency": "EUR", "status": "ACTIVE", "last_updated": T, **fields}
