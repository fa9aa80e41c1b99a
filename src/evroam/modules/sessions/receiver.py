"""Sessions, Receiver interface (the eMSP): GET, PUT and PATCH on
`/{country_code}/{party_id}/{session_id}`; a PUT replaces the charging
periods, a PATCH appends them (periods.py).
"""

from __future__ import annotations

import json

import structlog
from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.modules.sessions import MODULE as SESSIONS
from evroam.ocpi.sessions import Session
from evroam.ocpi.types import ci_key
from evroam.server import objects as common
from evroam.server import writes
from evroam.server.writes import Outcome
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey

log = structlog.get_logger(__name__)

router = APIRouter()


# --- Receiver (eMSP) --------------------------------------------------------------------


@router.get("/{country_code}/{party_id}/{session_id}")
async def get_session(request: Request, country_code: str, party_id: str, session_id: str):
    return await common.receiver_get(request, SESSIONS, country_code, party_id, session_id)


@router.put("/{country_code}/{party_id}/{session_id}")
async def put_session(request: Request, country_code: str, party_id: str, session_id: str):
    # The whole Session replaces the stored one: periods it leaves out are gone.
    written = await writes.receive_put(request, SESSIONS, country_code, party_id, session_id)
    session = written.obj
    if written.outcome is Outcome.CREATED and session.evse_uid != "#NA":
        async with common.ctx_of(request).engine.connect() as conn:
            known = await knows_evse(conn, written.party.id, session)
        if not known:
            # Accepted anyway: the Session is the CPO's truth; a pull of locations heals the gap.
            log.info("sessions.unknown_evse", party=written.party.name, location=session.location_id,
                     evse=session.evse_uid)
    return await writes.settle(request, SESSIONS, written)


@router.patch("/{country_code}/{party_id}/{session_id}")
async def patch_session(request: Request, country_code: str, party_id: str, session_id: str):
    # SESSIONS.merge (periods.append_periods): a PATCH appends charging periods.
    return await writes.receiver_patch(request, SESSIONS, country_code, party_id, session_id)


async def knows_evse(conn: AsyncConnection, owner_id: int, session: Session) -> bool:
    """Whether we hold (from that CPO) the Location and EVSE the session names."""
    stored = await repo.get(conn, ObjectKey("locations", owner_id, session.country_code, session.party_id,
                                            session.location_id))
    if stored is None:
        return False
    uid = ci_key(session.evse_uid)
    return any(ci_key(e.get("uid", "")) == uid for e in json.loads(stored.data).get("evses") or ())
