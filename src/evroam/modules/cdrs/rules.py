"""How a CDR we receive is judged, pushed or pulled: re-priced with the
tariffs it carries and those we hold, and kept ACCEPTED or DISPUTED with the
reason (the module description's `judge`)."""

from __future__ import annotations

import json

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.cdrs import CDR
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import ci_key
from evroam.pricing import check_cdr
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey

log = structlog.get_logger(__name__)

ACCEPTED = "ACCEPTED"
DISPUTED = "DISPUTED"


async def verdict(conn: AsyncConnection, owner_id: int, cdr: CDR) -> tuple[str, str | None]:
    """(ACCEPTED | DISPUTED, reason) for a received CDR.

    Priced with the tariffs it carries; the tariffs we hold from that CPO for
    the CDR's connector (and any tariff_id its periods name) fill in. The
    Location we received gives the time zone; without it, UTC, noted.
    """
    notes: list[str] = []
    loc = cdr.cdr_location
    stored = await repo.get(conn, ObjectKey("locations", owner_id, cdr.country_code, cdr.party_id, loc.id))
    location = json.loads(stored.data) if stored is not None else None
    time_zone = location.get("time_zone") if location else None
    if time_zone is None:
        notes.append(f"priced in UTC: location {loc.id} not received from this CPO")
    wanted = {ci_key(t) for t in _connector_tariff_ids(location, loc.evse_uid, loc.connector_id)}
    carried = {ci_key(t.id) for t in cdr.tariffs or ()}
    wanted |= {ci_key(p.tariff_id) for p in cdr.charging_periods if p.tariff_id} - carried
    ours: list[Tariff] = []
    for tid in sorted(wanted):
        t = await repo.get(conn, ObjectKey("tariffs", owner_id, cdr.country_code, cdr.party_id, tid))
        if t is not None:
            ours.append(Tariff.from_wire(t.data))
    try:
        report = check_cdr(cdr, tariffs=ours, time_zone=time_zone)
    except (LookupError, ValueError) as exc:  # no tariff, an unknown zone, a timeline that cannot be priced
        return DISPUTED, "; ".join([f"cannot verify: {exc}", *notes])
    if cdr.credit:
        original = await repo.get(conn, ObjectKey("cdrs", owner_id, cdr.country_code, cdr.party_id,
                                                  cdr.credit_reference_id or ""))
        if original is None:
            notes.append(f"credit for CDR {cdr.credit_reference_id}, which we never received")
    notes += [n for n in report.notes if not n.startswith("time zone:")]
    notes += [f"~ {d}" for d in report.inconsistencies]
    if report.ok:
        return ACCEPTED, "; ".join(notes) or None
    return DISPUTED, "; ".join([*(str(d) for d in report.differences), *notes])


def _connector_tariff_ids(location: dict | None, evse_uid: str, connector_id: str) -> list[str]:
    if not location:
        return []
    for evse in location.get("evses") or ():
        if ci_key(evse.get("uid", "")) == ci_key(evse_uid):
            for conn in evse.get("connectors") or ():
                if ci_key(conn.get("id", "")) == ci_key(connector_id):
                    return list(conn.get("tariff_ids") or ())
    return []
