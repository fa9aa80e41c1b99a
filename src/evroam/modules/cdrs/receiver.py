"""CDRs, Receiver interface (the eMSP): POST a new CDR (answered with a
`Location` header), GET it there. A CDR never changes: no PUT, PATCH or
DELETE, and a second POST of the same country_code/party_id/id is refused
(corrections come as Credit CDRs).

Each received CDR is re-priced and stored as ACCEPTED or DISPUTED with the
reason in objects.status/note (rules.verdict, the module's `judge`).
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request

from evroam.ocpi.cdrs import CDR
from evroam.modules.cdrs import MODULE as CDRS
from evroam.ocpi.status import invalid
from evroam.modules.cdrs.rules import ACCEPTED, verdict
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.modules.events import Received
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.objects import ref_key

log = structlog.get_logger(__name__)

router = APIRouter()



# --- Receiver (eMSP) --------------------------------------------------------------------


@router.post("")
async def post_cdr(request: Request):
    auth = await authenticate_registered(request)
    cdr = await parse_body(request, CDR)
    # The URL names no owner, so the body's must be one of the caller's roles.
    if not common.speaks_for(auth.party, cdr.country_code, cdr.party_id):
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
async def get_cdr(request: Request, country_code: str, party_id: str, cdr_id: str):
    return await common.receiver_get(request, CDRS, country_code, party_id, cdr_id)
