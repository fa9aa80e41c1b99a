"""Open Routing of Commands through a Hub (hub/openrouting.py; the table in
docs/hub/open-routing.md). A command, Receiver POST `{command}`, goes to
the CPO it concerns:

- START_SESSION, RESERVE_NOW, UNLOCK_CONNECTOR: the CPO that owns the
  body's `location_id` ("Location.id of the Location (belonging to the CPO
  this request is send to)"), a Location the Hub holds from its Broadcast Push;
- STOP_SESSION: the CPO of the body's `session_id` (a route learnt from
  that session's PUT, modules/sessions/routing.py);
- CANCEL_RESERVATION: the CPO the caller's RESERVE_NOW with that
  `reservation_id` went to (learnt here), else the Hub cannot tell.
"""

from __future__ import annotations

import json

from evroam.modules.sessions.routing import session_cpo
from evroam.ocpi.commands import CommandType
from evroam.ocpi.versions import InterfaceRole

MODULE_ID = "commands"
BY_LOCATION = frozenset({CommandType.START_SESSION, CommandType.RESERVE_NOW, CommandType.UNLOCK_CONNECTOR})


async def route(req) -> tuple[str, str] | None:
    segs = req.segments
    if req.iface != InterfaceRole.RECEIVER or req.method != "POST" or len(segs) != 1:
        return None
    command = segs[0]
    if command in BY_LOCATION:
        location_id = _required(req, "location_id", command)
        cpo = await req.holder("locations", location_id)
        if cpo is None:
            req.cannot_tell(f"the Hub holds no Location {location_id!r} from a Broadcast Push, "
                            "so the CPO it belongs to is unknown")
        return cpo
    if command == CommandType.STOP_SESSION:
        return await session_cpo(req, _required(req, "session_id", command))
    if command == CommandType.CANCEL_RESERVATION:
        reservation_id = _required(req, "reservation_id", command)
        cpo = await req.counterpart(MODULE_ID, reservation_id)
        if cpo is None:
            req.cannot_tell(f"no RESERVE_NOW of reservation {reservation_id!r} from you went through this Hub")
        return cpo
    return None


def _required(req, field: str, command: str) -> str:
    value = req.text(field)
    if value is None:
        req.cannot_tell(f"the {command} has no {field}")
    return value


def learn(routed) -> str | None:
    """A forwarded RESERVE_NOW tells where its reservation_id lives (for a
    later CANCEL_RESERVATION): FROM = the eMSP, TO = the CPO."""
    if routed.iface != InterfaceRole.RECEIVER or routed.segments != [CommandType.RESERVE_NOW.value]:
        return None
    try:
        reservation_id = json.loads(routed.body).get("reservation_id")
    except (ValueError, AttributeError):
        return None
    return reservation_id if isinstance(reservation_id, str) else None
