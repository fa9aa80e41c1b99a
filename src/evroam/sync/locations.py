"""Changing our own Locations (CPO side) below the Location level.

An EVSE or Connector lives inside its Location's document, so every change is
a read-modify-write of that document followed by `publish()` in the same
transaction. Small changes go out as a PATCH of just that EVSE or Connector
(`sub_path`), structural ones as a PUT of the whole Location.

last_updated propagates to the parents (mod_locations.asciidoc, GET List):
the Sender's date filters compare the Location's last_updated only.

Each helper takes a Node (its delivery worker is woken) or a bare engine.
`at` (default now) becomes the changed object's last_updated, but no
last_updated ever goes back: a Receiver keeps its newer version against an
older push (server/locations.py), so going back would leave it behind.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.ocpi.locations import EVSE, Connector, Location, Status
from evroam.ocpi.modules import LOCATIONS
from evroam.ocpi.types import ci_key, format_datetime, parse_datetime, utcnow
from evroam.store import objects
from evroam.store.objects import ObjectKey
from evroam.store.tables import OURS
from evroam.sync.publish import publish


class UnknownLocationObject(LookupError):
    """No such Location, EVSE or Connector among ours."""


# --- shared with the Receiver (server/locations.py) -------------------------------------

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


# --- our own Locations --------------------------------------------------------------------


def _engine(target: Any) -> AsyncEngine:
    return target if isinstance(target, AsyncEngine) else target.engine


def _notify(target: Any) -> None:
    delivery = getattr(target, "delivery", None)
    if delivery is not None:
        delivery.notify()


async def _load(conn: AsyncConnection, location_id: str) -> dict[str, Any]:
    stored = await objects.find_any_owner(conn, LOCATIONS.id, location_id, OURS)
    if stored is None:
        raise UnknownLocationObject(f"unknown location {location_id!r}")
    if conn.dialect.name == "postgresql":
        doc = json.loads(stored.data)
        stored = await objects.get(conn, ObjectKey(LOCATIONS.id, OURS, doc["country_code"], doc["party_id"],
                                                   doc["id"]), for_update=True)
        assert stored is not None  # nothing deletes Locations
    return json.loads(stored.data)


def _evse(doc: dict[str, Any], evse_uid: str) -> dict[str, Any]:
    i = index_of(doc.get("evses"), "uid", evse_uid)
    if i is None:
        raise UnknownLocationObject(f"unknown EVSE {evse_uid!r} in location {doc['id']!r}")
    return doc["evses"][i]


def _connector(evse: dict[str, Any], connector_id: str) -> dict[str, Any]:
    j = index_of(evse.get("connectors"), "id", connector_id)
    if j is None:
        raise UnknownLocationObject(f"unknown connector {connector_id!r} in EVSE {evse['uid']!r}")
    return evse["connectors"][j]


async def _change(target: Any, location_id: str,
                  mutate: Callable[[dict[str, Any]], tuple[dict[str, Any] | None, str | None]]) -> Location:
    """Load our Location, let `mutate` change the document and say what to
    send (a patch and its sub_path, or None for a PUT), validate, publish."""
    engine = _engine(target)
    async with location_lock(id(engine), location_id):
        async with engine.begin() as conn:
            doc = await _load(conn, location_id)
            patch, sub_path = mutate(doc)
            dup = duplicate_ids(doc)
            if dup:
                raise ValueError(dup)
            location = Location.from_wire(doc)
            await publish(conn, LOCATIONS, location, patch=patch, sub_path=sub_path)
    _notify(target)
    return location


def _small_patch(validated: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any] | None:
    """The PATCH body for `fields`, in wire form; None when a field was
    cleared, since a PATCH cannot remove information (a PUT must)."""
    if any(k not in validated for k in fields):
        return None
    return {**{k: validated[k] for k in fields}, "last_updated": validated["last_updated"]}


async def patch_evse(target: Any, location_id: str, evse_uid: str, fields: dict[str, Any],
                     at: datetime | None = None) -> Location:
    """Change some fields of one of our EVSEs; partners get a PATCH of that EVSE."""
    stamp = format_datetime(at or utcnow())
    fields = {k: v for k, v in fields.items() if k not in ("uid", "last_updated")}

    def mutate(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        evse = _evse(doc, evse_uid)
        evse.update(fields, last_updated=later(evse["last_updated"], stamp))
        doc["last_updated"] = later(doc["last_updated"], stamp)
        wire = EVSE.from_wire(evse).to_wire()
        return _small_patch(wire, fields), evse["uid"]

    return await _change(target, location_id, mutate)


async def set_evse_status(target: Any, location_id: str, evse_uid: str, status: Status | str,
                          at: datetime | None = None) -> Location:
    """The most common Locations message: an EVSE's status changed. REMOVED is
    how an EVSE is deleted (nothing in this module is ever deleted)."""
    return await patch_evse(target, location_id, evse_uid, {"status": Status(status)}, at)


async def patch_connector(target: Any, location_id: str, evse_uid: str, connector_id: str,
                          fields: dict[str, Any], at: datetime | None = None) -> Location:
    """Change some fields of one of our Connectors (e.g. tariff_ids); partners
    get a PATCH of that Connector, at …/{evse_uid}/{connector_id}."""
    stamp = format_datetime(at or utcnow())
    fields = {k: v for k, v in fields.items() if k not in ("id", "last_updated")}

    def mutate(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        evse = _evse(doc, evse_uid)
        connector = _connector(evse, connector_id)
        connector.update(fields, last_updated=later(connector["last_updated"], stamp))
        evse["last_updated"] = later(evse["last_updated"], stamp)
        doc["last_updated"] = later(doc["last_updated"], stamp)
        wire = Connector.from_wire(connector).to_wire()
        return _small_patch(wire, fields), f"{evse['uid']}/{connector['id']}"

    return await _change(target, location_id, mutate)


async def upsert_evse(target: Any, location_id: str, evse: EVSE) -> Location:
    """Add or replace one of our EVSEs; partners get the whole Location (a
    PATCH cannot create the EVSE, nor clear fields the new one leaves out)."""
    wire = evse.to_wire()

    def mutate(doc: dict[str, Any]) -> tuple[None, None]:
        evses = doc.setdefault("evses", [])
        i = index_of(evses, "uid", evse.uid)
        if i is None:
            evses.append(wire)
        else:
            evses[i] = wire
        doc["last_updated"] = later(doc["last_updated"], wire["last_updated"])
        return None, None

    return await _change(target, location_id, mutate)


async def upsert_connector(target: Any, location_id: str, evse_uid: str, connector: Connector) -> Location:
    """Add or replace one of our Connectors; partners get the whole Location."""
    wire = connector.to_wire()

    def mutate(doc: dict[str, Any]) -> tuple[None, None]:
        evse = _evse(doc, evse_uid)
        j = index_of(evse["connectors"], "id", connector.id)
        if j is None:
            evse["connectors"].append(wire)
        else:
            evse["connectors"][j] = wire
        evse["last_updated"] = later(evse["last_updated"], wire["last_updated"])
        doc["last_updated"] = later(doc["last_updated"], wire["last_updated"])
        return None, None

    return await _change(target, location_id, mutate)
