"""Location documents: an EVSE or Connector lives inside its Location's
document. The helpers both sides need (the Receiver in receiver.py,
our own changes in owner.py): lookups, duplicate ids, the
last_updated rule, and the per-Location lock."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Hashable

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.locations import EVSE, Location
from evroam.config import LocationLimits
from evroam.ocpi.base import dumps
from evroam.ocpi.status import not_found
from evroam.ocpi.types import ci_key, parse_datetime
from evroam.store.tables import OURS, objects


class UnknownLocationObject(LookupError):
    """No such Location, EVSE or Connector."""


_locks: weakref.WeakValueDictionary[tuple[Hashable, ...], asyncio.Lock] = weakref.WeakValueDictionary()


def location_lock(*key: Hashable) -> asyncio.Lock:
    """One lock per Location document in this process.

    SQLite takes no lock when a transaction reads, so two EVSE changes to one
    Location could each read the old document and the second write would drop
    the first. PostgreSQL rows are locked as well (FOR UPDATE), which also
    covers several processes.
    """
    k = tuple(ci_key(p) if isinstance(p, str) else p for p in key)
    lock = _locks.get(k)
    if lock is None:
        lock = _locks[k] = asyncio.Lock()
    return lock


def index_of(items: list[dict[str, Any]] | None, field: str, value: str) -> int | None:
    """Position of the EVSE (uid) or Connector (id) with this CiString id."""
    key = ci_key(value)
    for i, item in enumerate(items or ()):
        if isinstance(item.get(field), str) and ci_key(item[field]) == key:
            return i
    return None


def later(a: str, b: str) -> str:
    """The later of two DateTimes: a parent's last_updated never goes back
    (it is when it "or one of its EVSEs or Connectors" last changed)."""
    return b if parse_datetime(b) > parse_datetime(a) else a


def _get(obj: Any, field: str) -> Any:
    return obj.get(field) if isinstance(obj, dict) else getattr(obj, field)


def refusal(location: Location | dict[str, Any], limits: LocationLimits) -> str | None:
    """Why this Location may not be stored (2001), naming the field: too many
    EVSEs or connectors, or an EVSE uid or Connector id that appears twice."""
    evses = _get(location, "evses") or ()
    if len(evses) > limits.max_evses:
        return (f"evses: {len(evses)} EVSEs; this node takes at most {limits.max_evses} per Location "
                "(max_evses_per_location)")
    for i, evse in enumerate(evses):
        n = len(_get(evse, "connectors") or ())
        if n > limits.max_connectors:
            return (f"evses.{i}.connectors: {n} connectors; this node takes at most {limits.max_connectors} "
                    "per EVSE (max_connectors_per_evse)")
    return duplicate_ids(location)


def duplicate_ids(location: Location | dict[str, Any]) -> str | None:
    """A message naming the first EVSE uid or Connector id that appears twice
    (URLs address them by id, so a duplicate makes one unreachable)."""
    uids: set[str] = set()
    for i, evse in enumerate(_get(location, "evses") or ()):
        uid = _get(evse, "uid")
        if ci_key(uid) in uids:
            return f"evses.{i}.uid: {uid!r} appears twice in this Location"
        uids.add(ci_key(uid))
        msg = duplicate_connector_ids(evse, f"evses.{i}.")
        if msg:
            return msg
    return None


def duplicate_connector_ids(evse: EVSE | dict[str, Any], prefix: str = "") -> str | None:
    ids: set[str] = set()
    for j, connector in enumerate(_get(evse, "connectors") or ()):
        cid = _get(connector, "id")
        if ci_key(cid) in ids:
            return f"{prefix}connectors.{j}.id: {cid!r} appears twice in this EVSE"
        ids.add(ci_key(cid))
    return None


def find_evse(doc: dict[str, Any], evse_uid: str) -> dict[str, Any]:
    i = index_of(doc.get("evses"), "uid", evse_uid)
    if i is None:
        raise UnknownLocationObject(f"unknown EVSE {evse_uid!r} in location {doc['id']!r}")
    return doc["evses"][i]


def find_connector(evse: dict[str, Any], connector_id: str) -> dict[str, Any]:
    j = index_of(evse.get("connectors"), "id", connector_id)
    if j is None:
        raise UnknownLocationObject(f"unknown connector {connector_id!r} in EVSE {evse['uid']!r}")
    return evse["connectors"][j]


async def tariff_users(conn: AsyncConnection, country_code: str, party_id: str, tariff_id: str) -> list[str]:
    """The connectors of our Locations (under this country_code/party_id)
    whose tariff_ids list the tariff, as "location/evse/connector"."""
    key = ci_key(tariff_id)
    rows = (await conn.execute(sa.select(objects.c.data).where(
        objects.c.module == "locations", objects.c.owner_id == OURS, objects.c.stale.is_(False),
        objects.c.cc_key == ci_key(country_code), objects.c.pid_key == ci_key(party_id),
        # A cheap filter first; the documents that pass are read properly.
        sa.func.upper(objects.c.data).contains(f'"{key}"', autoescape=True)))).scalars()
    users = []
    for data in rows:
        doc = json.loads(data)
        for evse in doc.get("evses") or ():
            for c in evse.get("connectors") or ():
                if any(ci_key(t) == key for t in c.get("tariff_ids") or ()):
                    users.append(f"{doc['id']}/{evse['uid']}/{c['id']}")
    return users


def child_json(data: str, evse_uid: str, connector_id: str | None) -> bytes:
    """The EVSE (or Connector) of a stored Location document, as served (404 when absent)."""
    try:
        evse = find_evse(json.loads(data), evse_uid)
        return dumps(find_connector(evse, connector_id) if connector_id is not None else evse)
    except LookupError as exc:
        raise not_found(str(exc)) from None
