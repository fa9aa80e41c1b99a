"""Repository of asynchronous requests (the modules whose results follow at a
response_url: Commands, ChargingProfiles), both the ones we send and the
ones we receive. `kind` is the module id, `type` the request within it.

Every state change is one conditional UPDATE, so a result that overtakes
the synchronous response, a result racing the deadline, or two processes
reading at once can never move a request backwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.types import ci_key, format_datetime, utcnow
from evroam.store.tables import commands

OUT = "out"  # we sent it (eMSP/SCSP) and wait for its result
IN = "in"  # we received it (CPO) and report its result

PENDING = "PENDING"  # no synchronous response yet
ACCEPTED = "ACCEPTED"  # accepted; the result is still to come
COMPLETED = "COMPLETED"  # the result arrived (out) or was delivered (in)
TIMEOUT = "TIMEOUT"  # accepted, but no result within the announced timeout
ERROR = "ERROR"  # out: no usable response; in: the result could not be delivered
# Any other state is the response itself when it was not ACCEPTED:
# REJECTED, NOT_SUPPORTED, UNKNOWN_SESSION, TOO_OFTEN.


@dataclass(slots=True)
class Tracked:
    id: str
    direction: str
    kind: str
    type: str
    party_id: int
    ref: str | None
    response_url: str
    request: str | None
    state: str
    response: str | None
    status_code: int | None
    timeout: int | None
    deadline_at: datetime | None
    result: str | None
    result_data: str | None
    result_at: datetime | None
    message: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def late(self) -> bool:
        """A result that came after the deadline (it is kept, the state stays TIMEOUT)."""
        return bool(self.result_at and self.deadline_at and self.result_at > self.deadline_at)

    def to_dict(self) -> dict[str, Any]:
        def dt(v: datetime | None) -> str | None:
            return format_datetime(v) if v else None

        return {
            "id": self.id, "direction": self.direction, "kind": self.kind, "type": self.type,
            "party_id": self.party_id, "ref": self.ref, "response_url": self.response_url,
            "request": json.loads(self.request) if self.request else None,
            "state": self.state, "response": self.response, "status_code": self.status_code,
            "timeout": self.timeout, "deadline_at": dt(self.deadline_at), "result": self.result,
            "result_data": json.loads(self.result_data) if self.result_data else None,
            "result_at": dt(self.result_at), "late": self.late, "message": self.message,
            "created_at": dt(self.created_at), "updated_at": dt(self.updated_at),
        }


def _tracked(row: sa.Row) -> Tracked:
    return Tracked(row.uid, row.direction, row.kind, row.type, row.party_id, row.ref_key, row.response_url,
                   row.request, row.state, row.response, row.status_code, row.timeout_s, row.deadline_at,
                   row.result, row.result_data, row.result_at, row.message, row.created_at, row.updated_at)


async def insert(conn: AsyncConnection, *, uid: str, direction: str, kind: str, type_: str, party_id: int,
                 ref: str | None, response_url: str, request: str | None) -> None:
    now = utcnow()
    await conn.execute(commands.insert().values(
        uid=uid, direction=direction, kind=kind, type=type_, party_id=party_id,
        ref_key=ci_key(ref) if ref else None, response_url=response_url, request=request, state=PENDING,
        created_at=now, updated_at=now))


async def get(conn: AsyncConnection, uid: str) -> Tracked | None:
    row = (await conn.execute(sa.select(commands).where(commands.c.uid == uid))).first()
    return _tracked(row) if row else None


async def recent(conn: AsyncConnection, *, kind: str | None = None, direction: str | None = None,
                 party_id: int | None = None, limit: int = 50) -> list[Tracked]:
    stmt = sa.select(commands).order_by(commands.c.id.desc()).limit(limit)
    if kind is not None:
        stmt = stmt.where(commands.c.kind == kind)
    if direction is not None:
        stmt = stmt.where(commands.c.direction == direction)
    if party_id is not None:
        stmt = stmt.where(commands.c.party_id == party_id)
    return [_tracked(r) for r in (await conn.execute(stmt)).all()]


async def record_response(conn: AsyncConnection, uid: str, response: str, status_code: int, timeout: int,
                          message: str | None = None, now: datetime | None = None) -> None:
    """The synchronous answer. The state moves only out of PENDING: a result
    that overtook the response (some CPOs post it before they reply) stays."""
    now = now or utcnow()
    deadline = now + timedelta(seconds=max(timeout, 0)) if response == ACCEPTED else None
    await conn.execute(commands.update().where(commands.c.uid == uid).values(
        response=response, status_code=status_code, timeout_s=timeout, deadline_at=deadline,
        state=sa.case((commands.c.state == PENDING, response), else_=commands.c.state),
        message=sa.func.coalesce(message, commands.c.message), updated_at=now))


async def record_error(conn: AsyncConnection, uid: str, message: str, status_code: int | None = None) -> None:
    """No usable synchronous answer (unreachable, no envelope, error without data)."""
    await conn.execute(commands.update().where(commands.c.uid == uid).values(
        status_code=status_code, message=message[:2000],
        state=sa.case((commands.c.state == PENDING, ERROR), else_=commands.c.state), updated_at=utcnow()))


async def record_result(conn: AsyncConnection, uid: str, result: str, data: str, now: datetime | None = None,
                        delivery_error: str | None = None) -> None:
    """An asynchronous result (the latest wins: a reservation's ACCEPTED may be
    followed by CANCELED_RESERVATION on the same URL).

    After the deadline the state becomes or stays TIMEOUT and the result is
    kept beside it: whoever waited has already been told "timed out".
    """
    now = now or utcnow()
    overdue = sa.and_(commands.c.deadline_at.is_not(None), commands.c.deadline_at < now)
    if delivery_error is not None:
        state = sa.case((commands.c.state == TIMEOUT, TIMEOUT), (overdue, TIMEOUT), else_=ERROR)
        message: Any = ("result not delivered: " + delivery_error)[:2000]
    else:
        state = sa.case(
            (commands.c.state == TIMEOUT, TIMEOUT),
            (sa.and_(commands.c.state == ACCEPTED, overdue), TIMEOUT),
            (commands.c.state.in_([PENDING, ACCEPTED, COMPLETED, ERROR]), COMPLETED),
            else_=commands.c.state,  # a result after a non-ACCEPTED response breaks the spec: kept, state unchanged
        )
        message = commands.c.message
    await conn.execute(commands.update().where(commands.c.uid == uid).values(
        result=result, result_data=data, result_at=now, state=state, message=message, updated_at=now))


async def expire(conn: AsyncConnection, uid: str | None = None, now: datetime | None = None) -> int:
    """ACCEPTED requests past their deadline become TIMEOUT (one request, or all)."""
    now = now or utcnow()
    stmt = commands.update().where(commands.c.state == ACCEPTED, commands.c.deadline_at < now)
    if uid is not None:
        stmt = stmt.where(commands.c.uid == uid)
    result = await conn.execute(stmt.values(state=TIMEOUT, updated_at=now))
    return result.rowcount or 0


async def accepting_parties(conn: AsyncConnection, kind: str, type_: str, ref: str) -> list[int]:
    """Parties whose received request of this kind and type on `ref` we
    accepted at least once."""
    rows = await conn.execute(sa.select(commands.c.party_id).distinct().where(
        commands.c.direction == IN, commands.c.kind == kind, commands.c.type == type_,
        commands.c.ref_key == ci_key(ref), commands.c.response == ACCEPTED))
    return sorted(rows.scalars().all())
