"""Objects, pairings and look-ups shared by the interop tests."""

from __future__ import annotations

import json

import sqlalchemy as sa

from evroam.node import Node
from evroam.store import objects
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.store.tables import outbox
from tests import builders
from tests.interop.harness import Partner

T = "2026-01-01T00:00:00Z"

# The partner's parties (its CiStrings come back lower-cased) and ours.
PARTNER_CPO = ("CPO", "DE", "XWC")
PARTNER_EMSP = ("EMSP", "DE", "XEM")
EVROAM_CPO = [("CPO", "NL", "EVC")]
EVROAM_EMSP = [("EMSP", "NL", "EVE")]


def location(cc: str, pid: str, lid: str = "LOC1", updated: str = T, tariff_ids: tuple[str, ...] = ()) -> dict:
    """In Berlin, where the partner is; EVSE E1."""
    return builders.location(lid, cc, pid, updated=updated,
                             evses=[builders.evse(evse_id="DE*XWC*E1", updated=T, tariff_ids=tariff_ids)],
                             city="Berlin", country="DEU", coordinates={"latitude": "52.52000", "longitude": "13.40500"},
                             time_zone="Europe/Berlin")


def tariff(cc: str, pid: str, tid: str = "T1") -> dict:
    return builders.tariff(tid, cc, pid, price=0.30)


def cdr_token(cc: str, pid: str, uid: str = "TOK1") -> dict:
    return builders.cdr_token(cc, pid, uid, type="RFID")


def period(start: str, kwh: float) -> dict:
    return {"start_date_time": start, "dimensions": [{"type": "ENERGY", "volume": kwh}]}


def session(cc: str, pid: str, token: dict, sid: str = "S1", lid: str = "LOC1") -> dict:
    return {"country_code": cc, "party_id": pid, "id": sid, "start_date_time": T, "kwh": 1.5, "cdr_token": token,
            "auth_method": "WHITELIST", "location_id": lid, "evse_uid": "E1", "connector_id": "1",
            "currency": "EUR", "charging_periods": [period(T, 1.5)], "status": "ACTIVE", "last_updated": T}


def partner_cdr(cc: str, pid: str, token: dict, cid: str = "CDR1") -> dict:
    """A CDR as the partner's own model has it: its CdrLocation has no evse_uid."""
    return {"country_code": cc, "party_id": pid, "id": cid, "start_date_time": T,
            "end_date_time": "2026-01-01T01:00:00Z", "cdr_token": token, "auth_method": "WHITELIST",
            "cdr_location": {"id": "LOC1", "address": "Main 1", "city": "Berlin", "country": "DEU",
                             "coordinates": {"latitude": "52.52000", "longitude": "13.40500"},
                             "evse_id": "DE*XWC*E1", "connector_id": "1", "connector_standard": "IEC_62196_T2",
                             "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
            "currency": "EUR", "charging_periods": [period(T, 10)], "total_cost": {"excl_vat": 3.0},
            "total_energy": 10, "total_time": 1, "last_updated": T}


def token(cc: str, pid: str, uid: str, *, valid: bool = True, whitelist: str = "NEVER", type_: str = "RFID") -> dict:
    return builders.token(uid, cc, pid, type=type_, contract_id=f"{cc}-{pid}-{uid}", issuer="extrawest", valid=valid,
                          whitelist=whitelist)


# --- pairing ---------------------------------------------------------------------------------------


async def evroam_registers(node: Node, partner: Partner) -> Party:
    """evroam initiates: the partner's token A, the library's credentials receiver."""
    return await node.handshake.register(partner.versions_url, partner.token_a)


async def partner_registers(node: Node, partner: Partner, name: str = "xw") -> tuple[Party, str]:
    """The partner initiates (our control code on the library's schemas) with
    evroam's token A; returns the partner as evroam holds it, and that token A."""
    token_a, versions_url = await node.handshake.invite(name)
    reply = await partner.control("POST", "register", {"versions_url": versions_url, "token": token_a})
    assert (reply["http_status"], reply["body"]["status_code"]) == (200, 1000), reply
    return await node.party(name), token_a


# --- what evroam holds ----------------------------------------------------------------------------


async def received(node: Node, party: Party, module: str, cc: str, pid: str, oid: str,
                   type_: str = "") -> dict | None:
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, party.id, cc, pid, oid, type_))
    return json.loads(s.data) if s else None


async def count_received(node: Node, party: Party, module: str) -> int:
    from evroam.store.tables import objects as table

    async with node.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.module == module, table.c.owner_id == party.id))).scalar_one()


async def outbox_rows(node: Node) -> list[sa.Row]:
    async with node.engine.connect() as conn:
        return (await conn.execute(sa.select(outbox).order_by(outbox.c.id))).all()


async def delivered(node: Node) -> bool:
    """Every queued change has been accepted by the partner (delivered rows are removed)."""
    return not await outbox_rows(node)
