"""Our own Sessions and CDRs, on the CPO side: start, update, stop, issue the CDR.

Each change goes through `own.write` (sync/own.py: the rules every change of
ours follows) in the transaction that read the Session,
so concurrent updates of one session cannot lose each other's periods, and
each change is queued for the eMSP concerned:
- start: PUT of the new Session;
- update: PATCH carrying only the new charging periods (the receiver appends
  them) and the fields that changed;
- stop: PATCH to COMPLETED;
- issue_cdr: POST of the CDR priced by evroam.pricing.

If two such PATCHes pile up for one partner, the outbox turns them into one
PUT of the whole latest Session (store/outbox.enqueue), so no period is lost.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.cdrs import CDR, AuthMethod, CdrDimensionType, CdrLocation, CdrToken, ChargingPeriod
from evroam.ocpi.common import Price, Role
from evroam.ocpi.locations import Location, Status
from evroam.modules.cdrs import MODULE as CDRS
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.modules.sessions import MODULE as SESSIONS
from evroam.ocpi.sessions import Session, SessionStatus
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import utcnow
from evroam.pricing import DEFAULT_POLICY, CdrBuildError, PricingPolicy, SessionContext, build_cdr
from evroam.store import objects as repo
from evroam.modules.locations.rules import UnknownLocationObject, find_connector, find_evse
from evroam.store.objects import ObjectKey
from evroam.store.tables import OURS
from evroam.store.objects import object_key
from evroam.sync import own

if TYPE_CHECKING:
    from evroam.sync.services import NodeServices as Node

FINISHED = frozenset({SessionStatus.COMPLETED, SessionStatus.INVALID})


class UnknownSession(LookupError):
    pass


class SessionFinished(ValueError):
    """COMPLETED and INVALID are final: "no more modifications will be made"."""


class CdrExists(ValueError):
    """A CDR is sent once and never changes; corrections are Credit CDRs."""


class UnknownPlace(LookupError):
    """A Session or CDR of ours names a Location, EVSE or Connector we do not have.

    Partners would receive charging at a place that is not on their map; the
    spec's "#NA" (no EVSE or connector assigned yet) is the only stand-in."""


NOT_AVAILABLE = "#NA"


SESSION_PLACE = ("location_id", "evse_uid", "connector_id")
CDR_PLACE = ("cdr_location.id", "cdr_location.evse_uid", "cdr_location.connector_id")


async def check_place(conn: AsyncConnection, cc: str, pid: str, location_id: str, evse_uid: str,
                      connector_id: str, *, reserved: bool, fields: tuple[str, str, str] = SESSION_PLACE,
                      in_service: bool = True) -> None:
    """Raise UnknownPlace (naming the field) unless our Location under cc/pid
    holds this EVSE and Connector. `reserved`: a reservation may have no EVSE
    or connector assigned yet, and "#NA" stands for them (mod_sessions,
    mod_cdrs). `in_service`: the EVSE may not be REMOVED (a new session; a
    CDR may well be of an EVSE removed since)."""
    loc_f, evse_f, conn_f = fields
    stored = await repo.get(conn, ObjectKey(LOCATIONS.id, OURS, cc, pid, location_id))
    if stored is None:
        raise UnknownPlace(f"{loc_f}: we have no Location {location_id!r} under {cc}/{pid}")
    doc = json.loads(stored.data)
    if reserved and evse_uid == NOT_AVAILABLE:
        if connector_id != NOT_AVAILABLE:
            raise UnknownPlace(f"{conn_f}: must be {NOT_AVAILABLE} when {evse_f} is")
        return
    try:
        evse = find_evse(doc, evse_uid)
    except UnknownLocationObject:
        raise UnknownPlace(f"{evse_f}: Location {location_id!r} has no EVSE {evse_uid!r}") from None
    if in_service and evse.get("status") == Status.REMOVED.value:
        raise UnknownPlace(f"{evse_f}: EVSE {evse_uid!r} of Location {location_id!r} is REMOVED")
    if reserved and connector_id == NOT_AVAILABLE:
        return
    try:
        find_connector(evse, connector_id)
    except UnknownLocationObject:
        raise UnknownPlace(f"{conn_f}: EVSE {evse_uid!r} of Location {location_id!r} has no connector "
                           f"{connector_id!r}") from None


def _our_cpo(node: Node) -> tuple[str, str]:
    for r in node.config.roles:
        if r.role == Role.CPO:
            return r.country_code.upper(), r.party_id.upper()
    raise ValueError("this node has no CPO role: only a CPO owns Sessions and CDRs")


def _notify(node: Node) -> None:
    if node.delivery is not None:
        node.delivery.notify()


async def load(conn: AsyncConnection, session_id: str, *, for_update: bool = False) -> Session:
    found = await repo.find_any_owner(conn, SESSIONS.id, session_id, OURS)
    if found is None:
        raise UnknownSession(f"unknown session {session_id!r}")
    session = Session.from_wire(found.data)
    if for_update:
        # Re-read under a row lock (PostgreSQL), so the read-modify-write is atomic.
        locked = await repo.get(conn, object_key(SESSIONS, session), for_update=True)
        assert locked is not None
        session = Session.from_wire(locked.data)
    return session


async def get_session(node: Node, session_id: str) -> Session:
    async with node.engine.connect() as conn:
        return await load(conn, session_id)


async def start(
    node: Node,
    *,
    location_id: str,
    evse_uid: str,
    connector_id: str,
    cdr_token: CdrToken | dict[str, Any],
    currency: str,
    auth_method: AuthMethod | str = AuthMethod.WHITELIST,
    session_id: str | None = None,
    start_date_time: datetime | None = None,
    authorization_reference: str | None = None,
    meter_id: str | None = None,
    status: SessionStatus | str = SessionStatus.ACTIVE,
    require_place: bool = False,
) -> Session:
    """Create one of our Sessions and queue its PUT to the token's eMSP.

    `require_place`: refuse (UnknownPlace) a Location, EVSE or Connector we
    do not have, as the admin API does; code that drives a charger may start
    a session before the Location is published, so it is not the default."""
    cc, pid = _our_cpo(node)
    now = utcnow()
    token = cdr_token if isinstance(cdr_token, CdrToken) else CdrToken.from_wire(cdr_token)
    session = Session.from_wire({
        "country_code": cc, "party_id": pid, "id": session_id or str(uuid.uuid4()),
        "start_date_time": start_date_time or now, "kwh": 0, "cdr_token": token.to_wire(),
        "auth_method": AuthMethod(auth_method).value, "authorization_reference": authorization_reference,
        "location_id": location_id, "evse_uid": evse_uid, "connector_id": connector_id, "meter_id": meter_id,
        "currency": currency, "status": SessionStatus(status).value, "last_updated": now,
    })
    async with own.changing(node.engine, SESSIONS, session.id) as conn:
        if await repo.get(conn, object_key(SESSIONS, session)) is not None:
            raise ValueError(f"session {session.id!r} exists already")
        if require_place:
            await check_place(conn, cc, pid, location_id, evse_uid, connector_id,
                              reserved=session.status is SessionStatus.RESERVATION)
        await own.write(conn, SESSIONS, session, own.Ours.of(node.config))
    _notify(node)
    return session


def _energy(periods: Sequence[ChargingPeriod]) -> Decimal:
    return sum((d.volume for p in periods for d in p.dimensions if d.type is CdrDimensionType.ENERGY), Decimal(0))


async def _change(node: Node, session_id: str, changes: dict[str, Any],
                  new_periods: Sequence[ChargingPeriod] = ()) -> Session:
    """Apply `changes` (wire values) and append `new_periods`; queue a PATCH
    with exactly those fields, the new periods only, and last_updated.
    Without a kwh in `changes`, kwh grows by the new periods' ENERGY."""
    async with own.changing(node.engine, SESSIONS, session_id) as conn:
        current = await load(conn, session_id, for_update=True)
        if current.status in FINISHED:
            raise SessionFinished(f"session {session_id!r} is {current.status.value}: it no longer changes")
        if new_periods and "kwh" not in changes:
            changes = {**changes, "kwh": float(current.kwh + _energy(new_periods))}
        now = utcnow()
        patch: dict[str, Any] = {**changes, "last_updated": now}
        wire = current.to_wire() | patch
        if new_periods:
            added = [p.to_wire() for p in new_periods]
            wire["charging_periods"] = (wire.get("charging_periods") or []) + added
            patch["charging_periods"] = added
        session = Session.from_wire(wire)
        wire = session.to_wire()  # the canonical wire form of every patched field
        out = {k: wire[k] for k in patch if k in wire}
        if new_periods:
            out["charging_periods"] = wire["charging_periods"][-len(new_periods):]  # only the new ones
        await own.write(conn, SESSIONS, session, own.Ours.of(node.config), patch=out)
    _notify(node)
    return session


async def update(
    node: Node,
    session_id: str,
    charging_periods: Sequence[ChargingPeriod | dict[str, Any]] = (),
    *,
    kwh: Decimal | float | None = None,
    total_cost: Price | dict[str, Any] | None = None,
    status: SessionStatus | str | None = None,
) -> Session:
    """Append charging periods (and set kwh, total_cost, status).

    Without `kwh`, the session's kwh grows by the ENERGY of the new periods.
    """
    periods = [p if isinstance(p, ChargingPeriod) else ChargingPeriod.from_wire(p) for p in charging_periods]
    changes: dict[str, Any] = {}
    if kwh is not None:
        changes["kwh"] = kwh
    if total_cost is not None:
        changes["total_cost"] = total_cost.to_wire() if isinstance(total_cost, Price) else total_cost
    if status is not None:
        changes["status"] = SessionStatus(status).value
    return await _change(node, session_id, _wire_numbers(changes), periods)


async def stop(
    node: Node,
    session_id: str,
    *,
    end_date_time: datetime | None = None,
    charging_periods: Sequence[ChargingPeriod | dict[str, Any]] = (),
    kwh: Decimal | float | None = None,
    total_cost: Price | dict[str, Any] | None = None,
) -> Session:
    """End the session: COMPLETED, with its end_date_time (default now)."""
    periods = [p if isinstance(p, ChargingPeriod) else ChargingPeriod.from_wire(p) for p in charging_periods]
    changes: dict[str, Any] = {"status": SessionStatus.COMPLETED.value, "end_date_time": end_date_time or utcnow()}
    if kwh is not None:
        changes["kwh"] = kwh
    if total_cost is not None:
        changes["total_cost"] = total_cost.to_wire() if isinstance(total_cost, Price) else total_cost
    return await _change(node, session_id, _wire_numbers(changes), periods)


def _wire_numbers(changes: dict[str, Any]) -> dict[str, Any]:
    # Decimal is not a JSON number for the patch column; the model re-emits it.
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in changes.items()}


def cdr_location(location: Location, evse_uid: str, connector_id: str) -> CdrLocation:
    """The CdrLocation of one connector of one of our Locations."""
    for evse in location.evses or ():
        if evse.uid.upper() != evse_uid.upper():
            continue
        for c in evse.connectors:
            if c.id.upper() == connector_id.upper():
                if not evse.evse_id:
                    raise CdrBuildError(f"cdr_location.evse_id: EVSE {evse.uid} has no evse_id")
                return CdrLocation.from_wire({
                    "id": location.id, "name": location.name, "address": location.address, "city": location.city,
                    "postal_code": location.postal_code, "state": location.state, "country": location.country,
                    "coordinates": location.coordinates.to_wire(), "evse_uid": evse.uid, "evse_id": evse.evse_id,
                    "connector_id": c.id, "connector_standard": c.standard.value,
                    "connector_format": c.format.value, "connector_power_type": c.power_type.value,
                })
        raise CdrBuildError(f"cdr_location.connector_id: EVSE {evse.uid} has no connector {connector_id!r}")
    raise CdrBuildError(f"cdr_location.evse_uid: location {location.id} has no EVSE {evse_uid!r}")


async def issue_cdr(
    node: Node,
    session: Session | str,
    tariff: Tariff | Sequence[Tariff],
    location: Location,
    *,
    cdr_id: str | None = None,
    context: SessionContext | None = None,
    policy: PricingPolicy = DEFAULT_POLICY,
) -> CDR:
    """Price a finished Session with its tariff(s) and POST the CDR to its eMSP.

    `tariff`: the tariff that applied, or the connector's tariffs (then the
    session context picks). `location`: as it was at session start; its
    time_zone is the one the tariff restrictions are judged in.
    """
    if isinstance(session, str):
        session = await get_session(node, session)
    if session.status is not SessionStatus.COMPLETED:
        raise CdrBuildError(f"status: session {session.id} is {session.status.value}; a CDR follows COMPLETED")
    where = cdr_location(location, session.evse_uid, session.connector_id)
    cdr, _ = build_cdr(session, tariff, where, time_zone=location.time_zone, cdr_id=cdr_id, context=context,
                       policy=policy)
    async with own.changing(node.engine, CDRS, cdr.id) as conn:
        if await repo.get(conn, object_key(CDRS, cdr)) is not None:
            raise CdrExists(f"CDR {cdr.id} was issued already; correct it with a Credit CDR")
        await own.write(conn, CDRS, cdr, own.Ours.of(node.config))
    _notify(node)
    return cdr


async def connector_tariffs(node: Node, location: Location, evse_uid: str, connector_id: str, *,
                            tariff_ids: Sequence[str] | None = None) -> list[Tariff]:
    """Our tariffs that the connector lists (or `tariff_ids`), for issue_cdr."""
    ids: list[str] = list(tariff_ids or ())
    if tariff_ids is None:
        for evse in location.evses or ():
            if evse.uid.upper() == evse_uid.upper():
                for c in evse.connectors:
                    if c.id.upper() == connector_id.upper():
                        ids = list(c.tariff_ids or ())
    out = []
    async with node.engine.connect() as conn:
        for tid in ids:
            stored = await repo.get(conn, ObjectKey("tariffs", OURS, location.country_code, location.party_id, tid))
            if stored is not None and not stored.stale:  # stale: we deleted it
                out.append(Tariff.from_wire(stored.data))
    return out


async def our_location(node: Node, session: Session) -> Location | None:
    async with node.engine.connect() as conn:
        stored = await repo.get(conn, ObjectKey("locations", OURS, session.country_code, session.party_id,
                                                session.location_id))
    return Location.from_wire(stored.data) if stored is not None else None
