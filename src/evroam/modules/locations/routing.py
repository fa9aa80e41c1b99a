"""Open Routing of Locations through a Hub (hub/openrouting.py; the table in
docs/hub/open-routing.md): a Sender GET of one Location, EVSE or Connector,
`{location_id}[/{evse_uid}[/{connector_id}]]`, goes to the CPO that owns
the Location: the owner of the one the Hub holds from its Broadcast Push."""

from __future__ import annotations

from evroam.ocpi.versions import InterfaceRole

MODULE_ID = "locations"


async def route(req) -> tuple[str, str] | None:
    segs = req.segments
    if req.iface != InterfaceRole.SENDER or req.method != "GET" or not segs:
        return None
    cpo = await req.holder(MODULE_ID, segs[0])
    if cpo is None:
        req.cannot_tell(f"the Hub holds no Location {segs[0]!r} from a Broadcast Push, so its CPO is unknown")
    return cpo
