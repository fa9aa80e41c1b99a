"""Sync health per partner: how far behind it is on our changes (push lag),
what is stuck (dead letters) and how its pulls went.

Push lag is the age of the oldest undelivered outbox row: 0 when nothing is
waiting. A partner that is down keeps its rows pending, so its lag grows
with the outage; that is what the alert watches.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from evroam.background import Background, every
from evroam.ocpi.types import format_datetime, utcnow
from evroam.store import outbox
from evroam.store import parties as party_repo
from evroam.store.tables import sync_state

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class PullState:
    last_attempt_at: datetime | None
    last_success_start: datetime | None
    last_error: str | None
    objects_seen: int | None


@dataclass(slots=True)
class PartnerHealth:
    party_id: int
    name: str
    status: str
    pending: int = 0
    dead: int = 0
    lag_s: float = 0.0
    oldest_pending_at: datetime | None = None
    pulls: dict[str, PullState] = field(default_factory=dict)
    # A Hub: the pulls of each party behind it, "CC/PID" -> module -> state (sync/behind_pull.py).
    owner_pulls: dict[str, dict[str, PullState]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lag_s"] = round(self.lag_s, 3)
        return _jsonable(d)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


async def health(engine: AsyncEngine, party_id: int | None = None) -> list[PartnerHealth]:
    """Every partner's (or one partner's) push and pull state, from the database
    only, so any process (serve, worker, CLI) sees the same picture."""
    async with engine.connect() as conn:
        parties = await party_repo.list_all(conn)
        counts = await outbox.counts(conn)
        oldest = await outbox.oldest_pending(conn)
        stmt = sa.select(sync_state)
        if party_id is not None:
            stmt = stmt.where(sync_state.c.party_id == party_id)
        pulls = (await conn.execute(stmt.order_by(sync_state.c.party_id, sync_state.c.module, sync_state.c.owner_cc,
                                                  sync_state.c.owner_pid))).all()
    now = utcnow()
    out: dict[int, PartnerHealth] = {}
    for p in parties:
        if party_id is not None and p.id != party_id:
            continue
        h = PartnerHealth(p.id, p.name, p.status, pending=counts.get((p.id, outbox.PENDING), 0),
                          dead=counts.get((p.id, outbox.DEAD), 0))
        if p.id in oldest:
            h.oldest_pending_at = oldest[p.id]
            h.lag_s = max(0.0, (now - oldest[p.id]).total_seconds())
        out[p.id] = h
    for row in pulls:
        h = out.get(row.party_id)
        if h is None:
            continue
        state = PullState(row.last_attempt_at, row.last_success_start, row.last_error, row.objects_seen)
        if row.owner_cc or row.owner_pid:
            if row.last_attempt_at is not None:  # not a pull only asked for
                h.owner_pulls.setdefault(f"{row.owner_cc}/{row.owner_pid}", {})[row.module] = state
        else:
            h.pulls[row.module] = state
    return list(out.values())


class LagMonitor:
    """Keeps the Prometheus gauges current and logs `sync.lag_alert` once when
    a partner falls more than `alert_s` behind (and `sync.lag_recovered` when
    it catches up). Alerting runs only in the process that runs the workers;
    a scrape of /metrics refreshes the gauges without alerting, so several
    processes never repeat one alert."""

    def __init__(self, engine: AsyncEngine, registry: CollectorRegistry, *, alert_s: float = 60.0,
                 interval_s: float = 5.0) -> None:
        self.engine = engine
        self.registry = registry
        self.alert_s = alert_s
        self.interval_s = interval_s
        self.lag = Gauge("evroam_sync_lag_seconds", "Age of the oldest change not yet delivered to the partner.",
                         ["partner"], registry=registry)
        self.pending = Gauge("evroam_outbox_pending", "Deliveries waiting for the partner.", ["partner"],
                             registry=registry)
        self.dead = Gauge("evroam_outbox_dead", "Dead-lettered deliveries (evroam partners retry NAME).",
                          ["partner"], registry=registry)
        self.alerting: set[str] = set()
        self._labels: set[str] = set()
        self._lock = asyncio.Lock()
        self._monitor = Background("sync-lag-monitor")

    async def check(self, *, alert: bool = True) -> list[PartnerHealth]:
        async with self._lock:
            rows = await health(self.engine)
            # Partners that never registered or left without anything queued are no series.
            shown = [h for h in rows if h.status == party_repo.REGISTERED or h.pending or h.dead]
            names = {h.name for h in shown}
            for gone in self._labels - names:
                for g in (self.lag, self.pending, self.dead):
                    with contextlib.suppress(KeyError):
                        g.remove(gone)
                self.alerting.discard(gone)
            self._labels = names
            for h in shown:
                self.lag.labels(partner=h.name).set(h.lag_s)
                self.pending.labels(partner=h.name).set(h.pending)
                self.dead.labels(partner=h.name).set(h.dead)
                if alert:
                    self._alert(h)
            return rows

    def _alert(self, h: PartnerHealth) -> None:
        behind = h.lag_s > self.alert_s
        if behind and h.name not in self.alerting:
            self.alerting.add(h.name)
            log.warning("sync.lag_alert", partner=h.name, lag_s=round(h.lag_s, 1), threshold_s=self.alert_s,
                        pending=h.pending, dead=h.dead)
        elif not behind and h.name in self.alerting:
            self.alerting.discard(h.name)
            log.info("sync.lag_recovered", partner=h.name, lag_s=round(h.lag_s, 1), pending=h.pending)

    def start(self) -> None:
        self._monitor.start(lambda: every(self.interval_s, self.check, event="sync.lag_check_failed"))

    async def stop(self) -> None:
        await self._monitor.stop()

    async def metrics(self, request: Request) -> Response:
        """GET /metrics in the Prometheus text format."""
        try:
            await self.check(alert=False)
        except Exception:  # a scrape still answers with the last values
            log.exception("sync.metrics_refresh_failed")
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
