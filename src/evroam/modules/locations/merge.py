"""Merging Location messages that arrive in any order (docs/ordering.md).

A Location is three levels of objects (Location, EVSE, Connector), and a
message can address any level with a whole object (PUT) or some fields
(PATCH). `last_updated` of an EVSE or Location also moves when a child
changes (mod_locations), so it cannot tell whether the parent's *own* fields
are newer than a late message. We therefore keep, next to the document, when
each level's own fields were last set: `at` for the last whole object taken,
and a time per field a later PATCH set. A field is taken from a message only
if the message is newer than that field's time (last writer wins, per
field), and every `last_updated` is the newest time of its level and its
children. That makes the result the same in any delivery order.

Pure: no I/O. The caller validates what comes out.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evroam.ocpi.types import ci_key, format_datetime, parse_datetime
from evroam.modules.locations.rules import UnknownLocationObject, find_evse, index_of

REMOVED = "REMOVED"
# Fields that are not "own" fields of a level: children and the derived stamp.
_NOT_OWN = {"location": {"evses", "last_updated"}, "evse": {"connectors", "last_updated"},
            "connector": {"last_updated"}}


@dataclass
class Level:
    """When the own fields of one Location, EVSE or Connector were set."""

    at: datetime
    fields: dict[str, datetime] = field(default_factory=dict)

    def of(self, name: str) -> datetime:
        stamp = self.fields.get(name)
        return self.at if stamp is None or stamp < self.at else stamp

    def newest(self) -> datetime:
        return max(self.at, *self.fields.values()) if self.fields else self.at


@dataclass
class EvseVersions:
    own: Level
    connectors: dict[str, Level] = field(default_factory=dict)
    # Connectors a newer EVSE snapshot left out: removed, and when.
    gone: dict[str, datetime] = field(default_factory=dict)


@dataclass
class Versions:
    own: Level
    evses: dict[str, EvseVersions] = field(default_factory=dict)


@dataclass
class Held:
    """A stored Location: its document (wire form) and its versions."""

    doc: dict[str, Any]
    versions: Versions


def _stamp(obj: dict[str, Any]) -> datetime:
    return parse_datetime(obj["last_updated"])


def derived(doc: dict[str, Any]) -> Versions:
    """The versions a document implies without bookkeeping: every level as
    of its own last_updated. Exact for a whole Location (a PUT, a pull);
    for anything else it errs towards keeping what is stored."""
    evses = {}
    for e in doc.get("evses") or ():
        evses[ci_key(e["uid"])] = EvseVersions(
            Level(_stamp(e)), {ci_key(c["id"]): Level(_stamp(c)) for c in e.get("connectors") or ()})
    return Versions(Level(_stamp(doc)), evses)


# --- bookkeeping in and out of storage ------------------------------------------------------


def fingerprint(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _level_out(lv: Level, lu: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if lv.at != lu:
        out["at"] = format_datetime(lv.at)
    if lv.fields:
        out["f"] = {k: format_datetime(v) for k, v in sorted(lv.fields.items())}
    return out


def _level_in(raw: dict[str, Any], lu: datetime) -> Level:
    at = parse_datetime(raw["at"]) if "at" in raw else lu
    return Level(at, {k: parse_datetime(v) for k, v in (raw.get("f") or {}).items()})


def dump_versions(held: Held, data: str) -> str | None:
    """The bookkeeping to store beside `data` (the document as stored), or
    None when the document implies it all. Only what differs from
    `derived` is written, so a Location that only ever got whole PUTs
    carries nothing."""
    doc, v = held.doc, held.versions
    out: dict[str, Any] = _level_out(v.own, _stamp(doc))
    evses: dict[str, Any] = {}
    for e in doc.get("evses") or ():
        ev = v.evses[ci_key(e["uid"])]
        item = _level_out(ev.own, _stamp(e))
        conns = {}
        for c in e.get("connectors") or ():
            lv = _level_out(ev.connectors[ci_key(c["id"])], _stamp(c))
            if lv:
                conns[ci_key(c["id"])] = lv
        if conns:
            item["c"] = conns
        if ev.gone:
            item["gone"] = {k: format_datetime(s) for k, s in sorted(ev.gone.items())}
        if item:
            evses[ci_key(e["uid"])] = item
    if evses:
        out["e"] = evses
    if not out:
        return None
    return json.dumps({"of": fingerprint(data), **out}, separators=(",", ":"), sort_keys=True)


def load(data: str, note: str | None) -> Held:
    """A stored Location with its versions. Bookkeeping written for another
    version of the document (it was replaced by a pull, an import or an
    older evroam) is ignored, and the document's own stamps stand."""
    doc = json.loads(data)
    versions = derived(doc)
    try:
        raw = json.loads(note) if note else None
    except ValueError:
        raw = None
    if not isinstance(raw, dict) or raw.get("of") != fingerprint(data):
        return Held(doc, versions)
    versions.own = _level_in(raw, _stamp(doc))
    for e in doc.get("evses") or ():
        item = (raw.get("e") or {}).get(ci_key(e["uid"]))
        if not item:
            continue
        ev = versions.evses[ci_key(e["uid"])]
        ev.own = _level_in(item, _stamp(e))
        for c in e.get("connectors") or ():
            lv = (item.get("c") or {}).get(ci_key(c["id"]))
            if lv:
                ev.connectors[ci_key(c["id"])] = _level_in(lv, _stamp(c))
        ev.gone = {k: parse_datetime(s) for k, s in (item.get("gone") or {}).items()}
    return Held(doc, versions)


# --- the merge -------------------------------------------------------------------------------


def _fields(obj: dict[str, Any], lv: Level, incoming: dict[str, Any], stamp: datetime, *, whole: bool,
            level: str) -> None:
    """Take each field of `incoming` that is newer than the stored one. A
    whole object also sets the fields it leaves out (they go back to absent),
    unless a later PATCH set them."""
    skip = _NOT_OWN[level]
    if whole:
        if stamp <= lv.at:
            return
        for name in (set(obj) | set(incoming)) - skip:
            if lv.of(name) < stamp:
                if name in incoming:
                    obj[name] = copy.deepcopy(incoming[name])
                else:
                    obj.pop(name, None)
        lv.at = stamp
        lv.fields = {k: s for k, s in lv.fields.items() if s > stamp}
        return
    for name in set(incoming) - skip:
        if lv.of(name) < stamp:
            obj[name] = copy.deepcopy(incoming[name])
            lv.fields[name] = stamp


def put_connector(evse: dict[str, Any], ev: EvseVersions, incoming: dict[str, Any]) -> bool:
    """A whole Connector, at its own last_updated; True when it is new."""
    stamp = _stamp(incoming)
    cid = ci_key(incoming["id"])
    removed = ev.gone.get(cid)
    if removed is not None:
        if stamp <= removed:
            return False  # older than the snapshot that left it out
        del ev.gone[cid]
    connectors = evse.setdefault("connectors", [])
    j = index_of(connectors, "id", incoming["id"])
    if j is None:
        connectors.append(copy.deepcopy(incoming))
        ev.connectors[cid] = Level(stamp)
        return True
    _fields(connectors[j], ev.connectors[cid], incoming, stamp, whole=True, level="connector")
    return False


def patch_connector(evse: dict[str, Any], ev: EvseVersions, connector_id: str, patch: dict[str, Any]) -> None:
    stamp = _stamp(patch)
    cid = ci_key(connector_id)
    j = index_of(evse.get("connectors"), "id", connector_id)
    if j is None:
        removed = ev.gone.get(cid)
        if removed is not None and stamp <= removed:
            return  # a late PATCH of a Connector that a newer snapshot removed
        raise UnknownLocationObject(f"unknown connector {connector_id!r} in EVSE {evse['uid']!r}")
    _fields(evse["connectors"][j], ev.connectors[cid], patch, stamp, whole=False, level="connector")


def _ordered(stored: list[dict[str, Any]], first: list[str], key: str) -> list[dict[str, Any]]:
    """`stored` with the ids in `first` leading, in that order: the newest
    whole parent gives the order; children it does not list follow."""
    rank = {ci_key(i): n for n, i in enumerate(first)}
    return sorted(stored, key=lambda o: rank.get(ci_key(o[key]), len(rank)))


def put_evse(doc: dict[str, Any], v: Versions, incoming: dict[str, Any]) -> bool:
    """A whole EVSE, at its own last_updated; True when it is new."""
    stamp = _stamp(incoming)
    uid = ci_key(incoming["uid"])
    evses = doc.setdefault("evses", [])
    i = index_of(evses, "uid", incoming["uid"])
    if i is None:
        evse = copy.deepcopy(incoming)
        evses.append(evse)
        v.evses[uid] = EvseVersions(Level(stamp), {ci_key(c["id"]): Level(_stamp(c))
                                                   for c in evse.get("connectors") or ()})
        return True
    evse, ev = evses[i], v.evses[uid]
    newer = stamp > ev.own.at
    _fields(evse, ev.own, incoming, stamp, whole=True, level="evse")
    listed = incoming.get("connectors") or []
    for c in listed:
        put_connector(evse, ev, c)
    for c in _left_out(evse.get("connectors"), listed, "id", lambda cid: ev.connectors[cid].newest(), stamp):
        # The sender removed it; remembered, so that a late message does not bring it back.
        evse["connectors"].remove(c)
        del ev.connectors[ci_key(c["id"])]
        ev.gone[ci_key(c["id"])] = stamp
    if newer:
        evse["connectors"] = _ordered(evse["connectors"], [c["id"] for c in listed], "id")
    return False


def patch_evse(doc: dict[str, Any], v: Versions, evse_uid: str, patch: dict[str, Any]) -> None:
    """A PATCH of an EVSE. Connectors it lists are whole Connectors, taken
    as PUTs; Connectors it does not list are unchanged."""
    stamp = _stamp(patch)
    evse = find_evse(doc, evse_uid)
    ev = v.evses[ci_key(evse["uid"])]
    _fields(evse, ev.own, patch, stamp, whole=False, level="evse")
    for c in patch.get("connectors") or ():
        put_connector(evse, ev, c)


def _left_out(stored: list[dict[str, Any]] | None, listed: list[dict[str, Any]], key: str,
              newest: Callable[[str], datetime], stamp: datetime) -> list[dict[str, Any]]:
    """Stored children that a whole parent of `stamp` does not list and that
    have not changed since: the sender no longer has them. Ones that changed
    later were added later, and stay."""
    ids = {ci_key(x[key]) for x in listed}
    return [x for x in stored or () if ci_key(x[key]) not in ids and newest(ci_key(x[key])) < stamp]


def put_location(held: Held, incoming: dict[str, Any]) -> None:
    """A whole Location over a stored one. An EVSE it leaves out that has
    not changed since is REMOVED (EVSEs are never deleted, mod_locations
    "Flow and Lifecycle")."""
    doc, v = held.doc, held.versions
    stamp = _stamp(incoming)
    newer = stamp > v.own.at
    _fields(doc, v.own, incoming, stamp, whole=True, level="location")
    listed = incoming.get("evses") or []
    for e in listed:
        put_evse(doc, v, e)
    for e in _left_out(doc.get("evses"), listed, "uid", lambda uid: _evse_newest(v.evses[uid]), stamp):
        _fields(e, v.evses[ci_key(e["uid"])].own, {"status": REMOVED}, stamp, whole=False, level="evse")
    if newer and doc.get("evses"):
        doc["evses"] = _ordered(doc["evses"], [e["uid"] for e in listed], "uid")


def patch_location(held: Held, patch: dict[str, Any]) -> None:
    """A PATCH of a Location. EVSEs it lists are whole EVSEs, taken as PUTs;
    EVSEs it does not list are unchanged (a PATCH removes nothing)."""
    _fields(held.doc, held.versions.own, patch, _stamp(patch), whole=False, level="location")
    for e in patch.get("evses") or ():
        put_evse(held.doc, held.versions, e)


def find_evse_for(held: Held, evse_uid: str) -> tuple[dict[str, Any], EvseVersions]:
    evse = find_evse(held.doc, evse_uid)
    return evse, held.versions.evses[ci_key(evse["uid"])]


def _evse_newest(ev: EvseVersions) -> datetime:
    return max([ev.own.newest(), *(lv.newest() for lv in ev.connectors.values()), *ev.gone.values()])


def stamp_levels(held: Held) -> None:
    """Every last_updated becomes the newest time of its level and its
    children (mod_locations: a child's change updates its parents)."""
    doc, v = held.doc, held.versions
    newest = v.own.newest()
    for e in doc.get("evses") or ():
        ev = v.evses[ci_key(e["uid"])]
        for c in e.get("connectors") or ():
            c["last_updated"] = format_datetime(ev.connectors[ci_key(c["id"])].newest())
        e_newest = _evse_newest(ev)
        e["last_updated"] = format_datetime(e_newest)
        newest = max(newest, e_newest)
    doc["last_updated"] = format_datetime(newest)


def new_location(incoming: dict[str, Any]) -> Held:
    held = Held(copy.deepcopy(incoming), derived(incoming))
    stamp_levels(held)
    return held


PUT, PATCH = "PUT", "PATCH"


def receive(held: Held | None, method: str, body: dict[str, Any], evse_uid: str | None = None,
            connector_id: str | None = None) -> tuple[Held, bool]:
    """One Receiver message, addressed as its URL is: the Location, or its
    EVSE `evse_uid`, or that EVSE's Connector `connector_id`. Returns the
    merged Location (a copy; `held` is left as it was) and whether the
    addressed object was created. Raises UnknownLocationObject when the
    addressed object (for a PUT: its parent) is unknown; only a Location
    PUT creates a Location."""
    if method not in (PUT, PATCH):
        raise ValueError(f"method {method!r}: a Receiver takes PUT or PATCH")
    if held is None:
        if method == PUT and evse_uid is None:
            return new_location(body), True
        raise UnknownLocationObject("unknown location")
    held = copy.deepcopy(held)
    created = False
    if evse_uid is None:
        (put_location if method == PUT else patch_location)(held, body)
    elif connector_id is None:
        if method == PUT:
            created = put_evse(held.doc, held.versions, body)
        else:
            patch_evse(held.doc, held.versions, evse_uid, body)
    else:
        evse, ev = find_evse_for(held, evse_uid)
        if method == PUT:
            created = put_connector(evse, ev, body)
        else:
            patch_connector(evse, ev, connector_id, body)
    stamp_levels(held)
    return held, created
