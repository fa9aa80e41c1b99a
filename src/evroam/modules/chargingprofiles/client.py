"""ChargingProfiles, the requests we send.

eMSP/SCSP: `send_profile_request` gives every request its own response_url
ending in a unique id, records it as PENDING, calls the CPO and stores its
answer (sync/tracker.py); the result posted there is taken by sender.py.

CPO: `push_active_profile` tells the parties that set a profile on a session
that its ActiveChargingProfile changed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.client.ocpi import PartnerError
from evroam.modules.chargingprofiles import MODULE
from evroam.modules.chargingprofiles.owner import ProfileRequest
from evroam.ocpi.base import error_text
from evroam.ocpi.chargingprofiles import ActiveChargingProfile, ChargingProfile, SetChargingProfile
from evroam.ocpi.common import Role
from evroam.ocpi.headers import Routing
from evroam.ocpi.pagination import join_url
from evroam.store import parties as party_repo
from evroam.store.parties import Party
from evroam.store import tracking as repo
from evroam.modules.sessions import MODULE as SESSIONS
from evroam.server.routing import is_hub
from evroam.sync import tracker
from evroam.sync.via_hub import cpo_behind
from evroam.sync.tracker import InvalidRequest, SendError

if TYPE_CHECKING:
    from evroam.sync.services import NodeServices as Node

__all__ = ["InvalidRequest", "SendError", "profile_setters", "push_active_profile", "send_profile_request"]


async def send_profile_request(node: Node, partner_name: str, request: ProfileRequest | str, session_id: str, *,
                               duration: int | None = None,
                               charging_profile: ChargingProfile | dict[str, Any] | None = None,
                               to: tuple[str, str] | None = None) -> str:
    """eMSP/SCSP: ask the CPO for the ActiveChargingProfile (GET_ACTIVE, needs
    `duration`), set a profile (SET, needs `charging_profile`) or clear it
    (CLEAR). Returns the tracking id. `to`: the CPO behind a Hub partner; by
    default the one whose Session it is, as the Hub pushed it to us."""
    request = ProfileRequest(request)
    party = await node.party(partner_name)  # KeyError when unknown
    base = tracker.receiver_endpoint(party, MODULE.id)
    uid = tracker.new_uid()
    url = tracker.response_url(node.config.public_url, MODULE.id, request.value, uid)
    method, recorded, content, params = _shape(request, url, duration, charging_profile)
    if to is None and is_hub(party):
        to = await cpo_behind(node.engine, party, SESSIONS.id, session_id)
    out = tracker.Outgoing(uid, MODULE.id, request.value, session_id, url, recorded, method,
                           join_url(base, quote(session_id, safe="")), content=content, params=params)
    assert node.client is not None, "start() the node first"
    await tracker.track_and_send(node.engine, node.client, party, out, node.config.roles, to)
    return uid


def _shape(request: ProfileRequest, url: str, duration: int | None,
           charging_profile: ChargingProfile | dict[str, Any] | None,
           ) -> tuple[str, str, bytes | None, dict[str, str] | None]:
    """(method, the request as recorded, body, query) of a request type."""
    params = {"response_url": url}
    if request == ProfileRequest.GET_ACTIVE:
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
            raise InvalidRequest("duration: a non-negative number of seconds is required")
        recorded = json.dumps({"duration": duration, "response_url": url})
        return "GET", recorded, None, {**params, "duration": str(duration)}
    if request == ProfileRequest.SET:
        if charging_profile is None:
            raise InvalidRequest("charging_profile: required to set a profile")
        try:
            profile = (charging_profile if isinstance(charging_profile, ChargingProfile)
                       else ChargingProfile.from_wire(charging_profile))
        except ValidationError as exc:
            raise InvalidRequest(f"invalid charging_profile: {error_text(exc)}") from None
        content = SetChargingProfile(charging_profile=profile, response_url=url).to_json_bytes()
        return "PUT", content.decode(), content, None
    return "DELETE", json.dumps(params), None, params


def _routing(ours: tuple[str, str] | None, party: Party) -> Routing | None:
    """To a direct setter, its role; through a Hub, no TO: an Open Routing
    Request, which the Hub routes to the party whose SetChargingProfile of
    this session it forwarded to us (docs/hub/open-routing.md)."""
    if ours is not None and is_hub(party):
        return Routing(*ours)
    return tracker.routing_for(ours, None, party)


async def profile_setters(conn: AsyncConnection, session_id: str) -> list[int]:
    """Parties whose SetChargingProfile on this session we accepted at least
    once: the only ones the CPO may push ActiveChargingProfile updates to."""
    return await repo.accepting_parties(conn, MODULE.id, ProfileRequest.SET.value, session_id)


async def push_active_profile(node: Node, session_id: str, profile: ActiveChargingProfile) -> dict[str, str | None]:
    """CPO: tell every party that set a profile on this session (and only
    those, as the spec demands) that its ActiveChargingProfile changed.
    Returns party name → None when delivered, else the error."""
    assert node.client is not None, "start() the node first"
    async with node.engine.connect() as conn:
        party_ids = await profile_setters(conn, session_id)
        parties = [p for p in [await party_repo.get(conn, i) for i in party_ids] if p is not None]
    ours = next(((r.country_code.upper(), r.party_id.upper()) for r in node.config.roles if r.role == Role.CPO), None)
    out: dict[str, str | None] = {}
    for party in parties:
        base = party.endpoint_url(MODULE.id, "SENDER")
        if party.status != party_repo.REGISTERED or not base or not party.token_out:
            out[party.name] = f"no {MODULE.id} sender endpoint"
            continue
        try:
            res = await node.client.request("PUT", join_url(base, quote(session_id, safe="")), party.token_out,
                                            body=profile, party_id=party.id, partner=party.name, raw_token=party.allow_raw_token,
                                            routing=_routing(ours, party))
            out[party.name] = None if res.ok() else f"HTTP {res.http_status}, OCPI {res.status_code}"
        except PartnerError as exc:
            out[party.name] = exc.message
    return out
