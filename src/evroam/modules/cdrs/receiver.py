"""CDRs module (mod_cdrs.asciidoc): Sender (CPO) and Receiver (eMSP) routers.

Sender: GET list, only the caller's own CDRs.
Receiver: POST a new CDR (answered with a `Location` header), GET it there.
A CDR never changes: no PUT, PATCH or DELETE, and a second POST of the same
country_code/party_id/id is refused (corrections come as Credit CDRs).

Each received CDR is re-priced (evroam.pricing.check_cdr) and stored as
ACCEPTED or DISPUTED with the reason in objects.status/note.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.cdrs import CDR
from evroam.modules.cdrs import MODULE as CDRS
from evroam.ocpi.status import invalid
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import ci_key
from evroam.pricing import check_cdr
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.modules.events import Received
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.objects import ref_key

log = structlog.get_logger(__name__)

router = APIRouter()

ACCEPTED = "ACCEPTED"
DISPUTED = "DISPUTED"


# --- Receiver (eMSP) --------------------------------------------------------------------


@router.post("")
async def post_cdr(request: Request):  # noqa: ANN201
    auth = await authenticate_registered(request)
    cdr = await parse_body(request, CDR)
    # The URL names no owner, so the body's must be one of the caller's roles.
    mine = {(ci_key(r["country_code"]), ci_key(r["party_id"])) for r in auth.party.roles or ()}
    if (ci_key(cdr.country_code), ci_key(cdr.party_id)) not in mine:
        raise invalid(f"country_code/party_id: {cdr.country_code}/{cdr.party_id} is not among the roles "
                      "you registered with")
    ctx = common.ctx_of(request)
    key = ObjectKey(CDRS.id, auth.party.id, cdr.country_code, cdr.party_id, cdr.id)
    duplicate = invalid(f"id: CDR {cdr.country_code}/{cdr.party_id}/{cdr.id} was received already; a CDR "
                        "never changes (send a Credit CDR)")
    data = cdr.to_json_bytes().decode()
    location = ctx.url(request.url.path, *(quote(s, safe="") for s in (cdr.country_code, cdr.party_id, cdr.id)))
    async with ctx.engine.connect() as conn:
        existing = await repo.get(conn, key)
        if existing is not None:
            if existing.data == data:
                # The same CDR again (its first answer was lost): delivery is
                # at-least-once, so this is success, not a changed CDR.
                return common.respond(request, headers={"Location": location})
            raise duplicate
        status, note = await verdict(conn, auth.party.id, cdr)
    async with ctx.engine.begin() as conn:
        pk = await repo.insert(conn, key, data, cdr.last_updated,
                               ref_key=ref_key(CDRS, cdr), status=status, note=note)
    if pk is None:  # a concurrent twin won
        raise duplicate
    if status != ACCEPTED:
        log.warning("cdrs.disputed", party=auth.party.name, cdr=cdr.id, reason=note)
    await ctx.hooks.fire(Received.CDR, cdr, auth.party)
    return common.respond(request, http_status=201, headers={"Location": location})


@router.get("/{country_code}/{party_id}/{cdr_id}")
async def get_cdr(request: Request, country_code: str, party_id: str, cdr_id: str):  # noqa: ANN201
    return await common.receiver_get(request, CDRS, country_code, party_id, cdr_id)


# --- the consistency check -------------------------------------------------------------


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
        original = await repo.get(conn, ObjectKey(CDRS.id, owner_id, cdr.country_code, cdr.party_id,
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
