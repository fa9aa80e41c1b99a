"""A CPO's Locations as it changes them, and the messages it emits, for
ordering tests (docs/ordering.md): the sender's state after the last change
is what every Receiver must end with, whatever order the messages arrive in."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from evroam.ocpi.types import format_datetime

START = datetime(2026, 3, 1, tzinfo=UTC)

LOCATION_FIELDS = {"name": st.sampled_from(["Stationsplein", "Utrecht CS", "Jaarbeurs"]),
                   "address": st.sampled_from(["Stationsplein 1", "Croeselaan 6"]),
                   "postal_code": st.sampled_from(["3511 ED", "3521 CB", None])}
EVSE_FIELDS = {"status": st.sampled_from(["AVAILABLE", "CHARGING", "BLOCKED", "REMOVED"]),
               "physical_reference": st.sampled_from(["A", "B", None]),
               "floor_level": st.sampled_from(["-1", "2", None])}
CONNECTOR_FIELDS = {"max_amperage": st.sampled_from([16, 32]),
                    "tariff_ids": st.sampled_from([["T1"], ["T2"], ["T1", "T2"]]),
                    "max_voltage": st.sampled_from([230, 400])}


@dataclass
class Message:
    method: str  # PUT | PATCH
    path: tuple[str, ...]  # () the Location, (uid,) an EVSE, (uid, cid) a Connector
    body: dict[str, Any]


def connector(cid: str, at: str) -> dict[str, Any]:
    return {"id": cid, "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
            "max_voltage": 230, "max_amperage": 32, "tariff_ids": ["T1"], "last_updated": at}


def evse(uid: str, at: str) -> dict[str, Any]:
    return {"uid": uid, "evse_id": f"NL*CPO*E{uid}", "status": "AVAILABLE", "connectors": [connector("1", at)],
            "last_updated": at}


def location(at: str, lid: str = "LOC1") -> dict[str, Any]:
    return {"country_code": "NL", "party_id": "CPO", "id": lid, "publish": True, "name": "Stationsplein",
            "address": "Stationsplein 1", "city": "Utrecht", "country": "NLD",
            "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
            "evses": [evse("E0", at), evse("E1", at)], "time_zone": "Europe/Amsterdam", "last_updated": at}


def _method(kind: str) -> str:
    return "PUT" if kind.endswith("_put") else "PATCH"


def _set(obj: dict[str, Any], changes: dict[str, Any]) -> None:
    for k, v in changes.items():
        if v is None:
            obj.pop(k, None)
        else:
            obj[k] = v


@dataclass
class Sender:
    """The CPO side: each change is stamped one second after the last, and
    sets last_updated on the changed object and its parents (mod_locations)."""

    lid: str = "LOC1"
    state: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    clock: datetime = START

    def tick(self) -> str:
        self.clock += timedelta(seconds=1)
        return format_datetime(self.clock)

    def create(self) -> None:
        self.state = location(self.tick(), self.lid)
        self.messages.append(Message("PUT", (), copy.deepcopy(self.state)))

    def _evse(self, uid: str) -> dict[str, Any]:
        return next(e for e in self.state["evses"] if e["uid"] == uid)

    def change(self, draw: Any) -> None:
        """One change the CPO makes, drawn with hypothesis's `draw`, and the message it sends for it."""
        kind = draw(st.sampled_from(["loc_put", "loc_patch", "evse_put", "evse_patch", "conn_put", "conn_patch",
                                     "new_evse", "new_connector"]))
        at = self.tick()
        uid = draw(st.sampled_from([e["uid"] for e in self.state["evses"]]))
        e = self._evse(uid)
        cid = draw(st.sampled_from([c["id"] for c in e["connectors"]]))
        if kind in ("loc_put", "loc_patch"):
            changes = self._draw(draw, LOCATION_FIELDS, patch=kind == "loc_patch")
            _set(self.state, changes)
            self.state["last_updated"] = at
            body = copy.deepcopy(self.state) if kind == "loc_put" else {**changes, "last_updated": at}
            self.messages.append(Message(_method(kind), (), body))
            return
        if kind == "new_evse":
            uid = f"E{len(self.state['evses'])}"
            self.state["evses"].append(evse(uid, at))
            self.state["last_updated"] = at
            self.messages.append(Message("PUT", (uid,), copy.deepcopy(self._evse(uid))))
            return
        if kind in ("evse_put", "evse_patch"):
            changes = self._draw(draw, EVSE_FIELDS, patch=kind == "evse_patch")
            _set(e, changes)
            e["last_updated"] = self.state["last_updated"] = at
            body = copy.deepcopy(e) if kind == "evse_put" else {**changes, "last_updated": at}
            self.messages.append(Message(_method(kind), (uid,), body))
            return
        if kind == "new_connector":
            cid = str(len(e["connectors"]) + 1)
            e["connectors"].append(connector(cid, at))
            changes = {}
            kind = "conn_put"
        else:
            changes = self._draw(draw, CONNECTOR_FIELDS, patch=kind == "conn_patch")
        c = next(c for c in e["connectors"] if c["id"] == cid)
        _set(c, changes)
        c["last_updated"] = e["last_updated"] = self.state["last_updated"] = at
        body = copy.deepcopy(c) if kind == "conn_put" else {**changes, "last_updated": at}
        self.messages.append(Message(_method(kind), (uid, cid), body))

    @staticmethod
    def _draw(draw: Any, fields: dict[str, Any], *, patch: bool) -> dict[str, Any]:
        names = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, min_size=1 if patch else 0))
        changes = {n: draw(fields[n]) for n in names}
        if patch:
            # A PATCH cannot remove a field (mod_locations), so it only sets values.
            changes = {k: (v if v is not None else draw(fields[k].filter(lambda x: x is not None)))
                       for k, v in changes.items()}
        return changes


@st.composite
def histories(draw: st.DrawFn, lid: str = "LOC1", most: int = 12) -> tuple[Sender, list[Message]]:
    """A CPO's Location created, then changed 1 to `most` times; and its
    messages in a shuffled delivery order."""
    sender = Sender(lid)
    sender.create()
    for _ in range(draw(st.integers(1, most))):
        sender.change(draw)
    return sender, draw(st.permutations(sender.messages))


def sorted_children(doc: dict[str, Any]) -> dict[str, Any]:
    """A Location with its EVSEs and Connectors in id order: OCPI addresses
    them by id, and the order of ones added out of order is arrival order."""
    doc = copy.deepcopy(doc)
    for e in doc.get("evses") or ():
        e["connectors"] = sorted(e["connectors"], key=lambda c: c["id"])
    doc["evses"] = sorted(doc.get("evses") or (), key=lambda e: e["uid"])
    return doc
