"""The call log: every OCPI request in and out, kept for a retention period.

Rows are buffered and written in batches by one background task, so logging
never adds a database round trip to a request.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.background import Background, every
from evroam.ocpi.types import utcnow
from evroam.store.tables import call_log

log = structlog.get_logger(__name__)

# Credentials bodies carry tokens in clear; the log must not become the place
# where a hashed token can be read back.
_TOKEN_RE = re.compile(rb'("token"\s*:\s*)"(?:[^"\\]|\\.)*"')


def redact(body: bytes | None, cap: int) -> str | None:
    if not body:
        return None
    body = _TOKEN_RE.sub(rb'\1"<redacted>"', body)
    if len(body) > cap:
        body = body[:cap] + b"...<truncated>"
    return body.decode("utf-8", "replace")


@dataclass(slots=True)
class CallRecord:
    direction: str
    method: str
    url: str
    duration_ms: float
    http_status: int | None = None
    ocpi_status: int | None = None
    party_id: int | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    # bytes: as sent, redacted and capped when written (CallLog.flush).
    request_body: str | bytes | None = None
    response_body: str | bytes | None = None
    error: str | None = None
    at: datetime = field(default_factory=utcnow)


_FIELDS = tuple(f.name for f in fields(CallRecord))


class CallLog:
    def __init__(self, engine: AsyncEngine, body_cap: int = 16384, flush_interval: float = 0.25) -> None:
        self.engine = engine
        self.body_cap = body_cap
        self.flush_interval = flush_interval
        self._buffer: list[CallRecord] = []
        self._flusher = Background("call-log-flusher")
        self._lock = asyncio.Lock()

    def record(self, rec: CallRecord) -> None:
        self._buffer.append(rec)

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer:
                return
            batch, self._buffer = self._buffer, []
            try:
                rows = [self._row(r) for r in batch]
                async with self.engine.begin() as conn:
                    await conn.execute(call_log.insert(), rows)
            except Exception:  # the log must never take the node down
                log.exception("call_log.flush_failed", rows=len(batch))

    def _row(self, rec: CallRecord) -> dict:
        # Not dataclasses.asdict: it deep-copies every value, a cost per call logged.
        row = {name: getattr(rec, name) for name in _FIELDS}
        for name in ("request_body", "response_body"):
            if isinstance(row[name], bytes):
                row[name] = redact(row[name], self.body_cap)
        return row

    def start(self) -> None:
        self._flusher.start(lambda: every(self.flush_interval, self.flush, event="call_log.flush_failed",
                                          first_delay_s=self.flush_interval))

    async def stop(self) -> None:
        await self._flusher.stop()
        await self.flush()


async def prune(engine: AsyncEngine, retention_days: int) -> int:
    cutoff = utcnow() - timedelta(days=retention_days)
    async with engine.begin() as conn:
        result = await conn.execute(call_log.delete().where(call_log.c.at < cutoff))
    return result.rowcount or 0


async def reassign(conn: AsyncConnection, from_id: int, to_id: int) -> None:
    """A registration folded into the partner we already held keeps its calls there."""
    await conn.execute(call_log.update().where(call_log.c.party_id == from_id).values(party_id=to_id))


async def recent(engine: AsyncEngine, party_id: int | None = None, limit: int = 20) -> list[dict]:
    stmt = sa.select(call_log).order_by(call_log.c.id.desc()).limit(limit)
    if party_id is not None:
        stmt = stmt.where(call_log.c.party_id == party_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [dict(r._mapping) for r in rows]
