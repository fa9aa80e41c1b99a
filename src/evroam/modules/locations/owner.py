"""Our own Locations (CPO side): the owner rules of the module (RULES, which
sync/own.py applies to every change of ours), and changes below the Location level.

An EVSE or Connector lives inside its Location's document, so every change is
a read-modify-write of that document followed by `own.write()` in the same
transaction, under the Location's lock. Small changes go out as a PATCH of
just that EVSE or Connector (`sub_path`), structural ones as a PUT of the
whole Location.

last_updated propagates to the parents (mod_locations.asciidoc, GET List):
the Sender's date filters compare the Location's last_updated only.

Each helper takes a Node (its delivery worker is woken; its config gives our
roles and limits) or a bare engine (only a stored Location changes, under the
default limits).
`at` (default now) becomes the changed object's last_updated, but no
last_updated ever goes back: a Receiver keeps its newer version against an
older push (receiver.py), so going back would leave it behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.config import LocationLimits
from evroam.module import OwnerRules
from evroam.ocpi.locations import EVSE, Connector, Location, Status
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.ocpi.types import format_datetime, utcnow
from evroam.store import objects
from evroam.modules.locations.rules import UnknownLocationObject as UnknownLocationObject  # re-exported: raised here
from evroam.modules.locations.rules import find_connector, find_evse, index_of, later, location_lock, refusal
from evroam.store.objects import ObjectKey
from evroam.store.tables import OURS
from evroam.sync import own


def _refusal(location: Location, config: Any) -> str | None:
    """Duplicate EVSE uids or Connector ids, or more EVSEs or connectors than the node takes."""
    return refusal(location, config.location_limits if config is not None else LocationLimits())


# Every change of one of our Locations (a PUT, an import, an EVSE change) holds
# the lock: EVSE and Connector changes are read-modify-writes of its document.
RULES = OwnerRules(refusal=_refusal, lock=location_lock)


# --- our own Locations --------------------------------------------------------------------


def _engine(target: Any) -> AsyncEngine:
    return target if isinstance(target, AsyncEngine) else target.engine


def _ours(target: Any) -> own.Ours:
    return own.Ours() if isinstance(target, AsyncEngine) else own.Ours.of(target.config)


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


async def _change(target: Any, location_id: str,
                  mutate: Callable[[dict[str, Any]], tuple[dict[str, Any] | None, str | None]]) -> Location:
    """Load our Location, let `mutate` change the document and say what to
    send (a patch and its sub_path, or None for a PUT), validate, publish."""
    async with own.changing(_engine(target), LOCATIONS, location_id) as conn:
        doc = await _load(conn, location_id)
        patch, sub_path = mutate(doc)
        location = Location.from_wire(doc)
        kind = await own.write(conn, LOCATIONS, location, _ours(target), patch=patch, sub_path=sub_path)
    if kind != own.UNCHANGED:
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
        evse = find_evse(doc, evse_uid)
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
        evse = find_evse(doc, evse_uid)
        connector = find_connector(evse, connector_id)
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
        evse = find_evse(doc, evse_uid)
        j = index_of(evse["connectors"], "id", connector.id)
        if j is None:
            evse["connectors"].append(wire)
        else:
            evse["connectors"][j] = wire
        evse["last_updated"] = later(evse["last_updated"], wire["last_updated"])
        doc["last_updated"] = later(doc["last_updated"], wire["last_updated"])
        return None, None

    return await _change(target, location_id, mutate)
