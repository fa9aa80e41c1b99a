"""Commands and ChargingProfiles (mod_commands, mod_charging_profiles): the
requests we send. Receiving them, results and the timeout rules are in
evroam.modules.commands.asyncrequests.

eMSP/SCSP (Sender): `send_command` and `send_profile_request` give every
request its own response_url ending in a unique id, record it as PENDING,
call the CPO and store its answer. The result posted to that response_url is
taken by the server (`expect_tracked`, `store_result`).

CPO: `result_poster` is how a node's `Callbacks` POST results to the
eMSP's response_url; `push_active_profile` tells the parties that set a
profile on a session that its ActiveChargingProfile changed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from evroam.client.ocpi import OcpiClient, PartnerError, UnusableReply
from evroam.ocpi.base import OcpiModel, error_text
from evroam.ocpi.chargingprofiles import (
    ActiveChargingProfile,
    ChargingProfile,
    ChargingProfileResponse,
    SetChargingProfile,
)
from evroam.ocpi.commands import CommandResponse, CommandType
from evroam.ocpi.common import Role
from evroam.ocpi.headers import Routing
from evroam.ocpi.pagination import join_url
from evroam.ocpi.status import StatusCode
from evroam.modules.commands.asyncrequests import COMMAND_MODELS, PostResult, ProfileRequest, new_uid, routing_for
from evroam.modules.commands import tracking as repo
from evroam.store import parties as party_repo
from evroam.modules.commands.tracking import CHARGING_PROFILES, COMMANDS, OUT
from evroam.store.parties import Party

if TYPE_CHECKING:
    from evroam.node import Node

V = "2.2.1"


class SendError(ValueError):
    """A request we cannot send to that partner (not registered, no endpoint)."""


class InvalidRequest(SendError):
    """A request body or parameter that is not valid OCPI."""


# --- CPO side ----------------------------------------------------------------------------------


def result_poster(client: OcpiClient) -> PostResult:
    """The POST of a Commands/ChargingProfiles result to the partner's
    response_url, for `Callbacks(post_result=...)`."""

    async def post_result(party: Party, url: str, body: bytes, routing: Routing | None) -> str | None:
        try:
            res = await client.request("POST", url, party.token_out, content=body, party_id=party.id, partner=party.name,
                                       raw_token=party.allow_raw_token, routing=routing)
        except PartnerError as exc:
            return exc.message
        if res.ok():
            return None
        return f"HTTP {res.http_status}, OCPI {res.status_code} {res.envelope.status_message or ''}".rstrip()

    return post_result


async def push_active_profile(node: Node, session_id: str, profile: ActiveChargingProfile) -> dict[str, str | None]:
    """CPO: tell every party that set a profile on this session (and only
    those, as the spec demands) that its ActiveChargingProfile changed.
    Returns party name → None when delivered, else the error."""
    assert node.client is not None, "start() the node first"
    async with node.engine.connect() as conn:
        party_ids = await repo.profile_setters(conn, session_id)
        parties = [p for p in [await party_repo.get(conn, i) for i in party_ids] if p is not None]
    ours = next(((r.country_code.upper(), r.party_id.upper()) for r in node.config.roles if r.role == Role.CPO), None)
    out: dict[str, str | None] = {}
    for party in parties:
        base = party.endpoint_url("chargingprofiles", "SENDER")
        if party.status != party_repo.REGISTERED or not base or not party.token_out:
            out[party.name] = "no chargingprofiles sender endpoint"
            continue
        try:
            res = await node.client.request("PUT", join_url(base, quote(session_id, safe="")), party.token_out,
                                            body=profile, party_id=party.id, partner=party.name, raw_token=party.allow_raw_token,
                                            routing=routing_for(ours, None, party))
            out[party.name] = None if res.ok() else f"HTTP {res.http_status}, OCPI {res.status_code}"
        except PartnerError as exc:
            out[party.name] = exc.message
    return out


# --- eMSP / SCSP side --------------------------------------------------------------------------


def _our_routing(node: Node, party: Party) -> Routing | None:
    mine = [r for r in node.config.roles if r.role in (Role.EMSP, Role.SCSP)] or list(node.config.roles)
    if not mine:
        return None
    theirs = next(((r["country_code"], r["party_id"]) for r in party.roles or () if r.get("role") == "CPO"), None)
    return routing_for((mine[0].country_code.upper(), mine[0].party_id.upper()), theirs, party)


def _response_url(node: Node, module: str, type_: str, uid: str) -> str:
    url = join_url(node.config.public_url, "ocpi", V, "sender", module, type_, uid)
    if len(url) > 255:
        raise SendError(f"response_url would exceed 255 characters: {url}")
    return url


async def _partner_endpoint(node: Node, partner_name: str, module: str) -> tuple[Party, str]:
    party = await node.party(partner_name)  # KeyError when unknown
    base = party.endpoint_url(module, "RECEIVER")
    if party.status != party_repo.REGISTERED or not base or not party.token_out:
        raise SendError(f"{partner_name} has no {module} receiver endpoint")
    return party, base


async def send_command(node: Node, partner_name: str, command_type: CommandType | str,
                       body: OcpiModel | dict[str, Any]) -> str:
    """eMSP: send a command; returns its tracking id (the unique id inside its
    response_url). The body is the command object without response_url."""
    command_type = CommandType(command_type)
    party, base = await _partner_endpoint(node, partner_name, "commands")
    doc = body.to_wire() if isinstance(body, OcpiModel) else dict(body)
    if doc.get("response_url") is not None:
        raise InvalidRequest("response_url: evroam makes a unique one for every command; leave it out")
    uid = new_uid()
    response_url = _response_url(node, "commands", command_type.value, uid)
    try:
        command = COMMAND_MODELS[command_type].from_wire({**doc, "response_url": response_url})
    except ValidationError as exc:
        raise InvalidRequest(f"invalid {command_type.value}: {error_text(exc)}") from None
    ref = next((getattr(command, f) for f in ("location_id", "session_id", "reservation_id")
                if hasattr(command, f)), None)
    data = command.to_json_bytes()
    await _track_and_send(node, party, uid, COMMANDS, command_type.value, ref, response_url, data.decode(),
                          "POST", join_url(base, command_type.value), CommandResponse, content=data)
    return uid


async def send_profile_request(node: Node, partner_name: str, request: ProfileRequest | str, session_id: str, *,
                               duration: int | None = None,
                               charging_profile: ChargingProfile | dict[str, Any] | None = None) -> str:
    """eMSP/SCSP: ask the CPO for the ActiveChargingProfile (GET_ACTIVE, needs
    `duration`), set a profile (SET, needs `charging_profile`) or clear it
    (CLEAR). Returns the tracking id."""
    request = ProfileRequest(request)
    party, base = await _partner_endpoint(node, partner_name, "chargingprofiles")
    uid = new_uid()
    response_url = _response_url(node, "chargingprofiles", request.value, uid)
    url = join_url(base, quote(session_id, safe=""))
    content: bytes | None = None
    params: dict[str, str] = {"response_url": response_url}
    if request == ProfileRequest.GET_ACTIVE:
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
            raise InvalidRequest("duration: a non-negative number of seconds is required")
        params["duration"] = str(duration)
        method, recorded = "GET", json.dumps({"duration": duration, "response_url": response_url})
    elif request == ProfileRequest.SET:
        if charging_profile is None:
            raise InvalidRequest("charging_profile: required to set a profile")
        try:
            profile = (charging_profile if isinstance(charging_profile, ChargingProfile)
                       else ChargingProfile.from_wire(charging_profile))
        except ValidationError as exc:
            raise InvalidRequest(f"invalid charging_profile: {error_text(exc)}") from None
        content = SetChargingProfile(charging_profile=profile, response_url=response_url).to_json_bytes()
        method, recorded, params = "PUT", content.decode(), {}
    else:
        method, recorded = "DELETE", json.dumps({"response_url": response_url})
    await _track_and_send(node, party, uid, CHARGING_PROFILES, request.value, session_id, response_url, recorded,
                          method, url, ChargingProfileResponse, content=content, params=params or None)
    return uid


async def _track_and_send(node: Node, party: Party, uid: str, kind: str, type_: str, ref: str | None,
                          response_url: str, recorded: str, method: str, url: str, response_model: type[OcpiModel],
                          *, content: bytes | None = None, params: dict[str, str] | None = None) -> None:
    assert node.client is not None, "start() the node first"
    # Stored (and committed) before the call: a CPO may post the result
    # before its answer reaches us.
    async with node.engine.begin() as conn:
        await repo.insert(conn, uid=uid, direction=OUT, kind=kind, type_=type_, party_id=party.id, ref=ref,
                          response_url=response_url, request=recorded)
    try:
        res = await node.client.request(method, url, party.token_out, content=content, params=params,
                                        party_id=party.id, partner=party.name, raw_token=party.allow_raw_token,
                                        routing=_our_routing(node, party))
    except PartnerError as exc:
        async with node.engine.begin() as conn:
            await repo.record_error(conn, uid, exc.message)
        return
    response = None
    problem = ""
    try:
        response = res.one(response_model)
    except UnusableReply as exc:
        if 200 <= res.http_status < 300:
            # A success status with no usable answer: say what was wrong with it.
            problem = f", but the answer is unusable: {exc}"
    note = f"OCPI {res.status_code} {res.envelope.status_message or ''}".rstrip()
    async with node.engine.begin() as conn:
        if response is not None and 200 <= res.http_status < 300:
            # With 2003 the answer still carries a REJECTED response (the spec's diagram).
            texts = [t.text for t in getattr(response, "message", None) or ()]
            message = "; ".join(([note] if res.status_code != StatusCode.SUCCESS else []) + texts) or None
            await repo.record_response(conn, uid, response.result.value, res.status_code,  # type: ignore[attr-defined]
                                       response.timeout, message)  # type: ignore[attr-defined]
        else:
            await repo.record_error(conn, uid, f"HTTP {res.http_status}, {note}{problem}", res.status_code)
