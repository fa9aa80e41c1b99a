"""Open Routing of ChargingProfiles through a Hub (hub/openrouting.py; the
table in docs/hub/open-routing.md).

- Receiver GET/PUT/DELETE `{session_id}` (eMSP or SCSP to CPO): the
  session's CPO ("The unique id that identifies the session in the CPO
  platform"), learnt from that session's PUT (modules/sessions/routing.py).
- Sender PUT `{session_id}` (CPO to eMSP or SCSP, an ActiveChargingProfile):
  the party whose SetChargingProfile for that session went to the caller,
  learnt here: the CPO pushes "only for sessions where that Sender has
  successfully set a profile".
"""

from __future__ import annotations

from evroam.modules.sessions.routing import session_cpo
from evroam.ocpi.versions import InterfaceRole

MODULE_ID = "chargingprofiles"


async def route(req) -> tuple[str, str] | None:
    segs = req.segments
    if len(segs) != 1:
        return None
    if req.iface == InterfaceRole.RECEIVER and req.method in ("GET", "PUT", "DELETE"):
        return await session_cpo(req, segs[0])
    if req.iface == InterfaceRole.SENDER and req.method == "PUT":
        setter = await req.counterpart(MODULE_ID, segs[0])
        if setter is None:
            req.cannot_tell(f"no charging profile of Session {segs[0]!r} was set through this Hub for you")
        return setter
    return None


def learn(routed) -> str | None:
    """A forwarded Receiver PUT `{session_id}` (SetChargingProfile): FROM =
    the party that set it, TO = the CPO."""
    segs = routed.segments
    if routed.method == "PUT" and routed.iface == InterfaceRole.RECEIVER and len(segs) == 1:
        return segs[0]
    return None
