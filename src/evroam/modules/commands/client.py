"""Commands, the eMSP's side: `send_command` gives every command its own
response_url ending in a unique id, records it as PENDING, calls the CPO and
stores its answer (sync/tracker.py). The result posted to that response_url
is taken by sender.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from evroam.modules.commands import MODULE
from evroam.modules.commands.owner import COMMAND_MODELS
from evroam.ocpi.base import OcpiModel, error_text
from evroam.ocpi.commands import CommandType
from evroam.ocpi.pagination import join_url
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.modules.sessions import MODULE as SESSIONS
from evroam.server.routing import is_hub
from evroam.sync import tracker
from evroam.sync.via_hub import cpo_behind
from evroam.sync.tracker import InvalidRequest, SendError

if TYPE_CHECKING:
    from evroam.sync.services import NodeServices as Node

__all__ = ["InvalidRequest", "SendError", "send_command"]


async def send_command(node: Node, partner_name: str, command_type: CommandType | str,
                       body: OcpiModel | dict[str, Any], *, to: tuple[str, str] | None = None) -> str:
    """eMSP: send a command; returns its tracking id (the unique id inside its
    response_url). The body is the command object without response_url.

    `to`: the CPO (cc, pid) behind a Hub partner the command is for; by
    default the one whose Location (or, for STOP_SESSION, Session) it names,
    as the Hub pushed it to us."""
    command_type = CommandType(command_type)
    party = await node.party(partner_name)  # KeyError when unknown
    base = tracker.receiver_endpoint(party, MODULE.id)
    doc = body.to_wire() if isinstance(body, OcpiModel) else dict(body)
    if doc.get("response_url") is not None:
        raise InvalidRequest("response_url: evroam makes a unique one for every command; leave it out")
    uid = tracker.new_uid()
    url = tracker.response_url(node.config.public_url, MODULE.id, command_type.value, uid)
    try:
        command = COMMAND_MODELS[command_type].from_wire({**doc, "response_url": url})
    except ValidationError as exc:
        raise InvalidRequest(f"invalid {command_type.value}: {error_text(exc)}") from None
    ref = next((getattr(command, f) for f in ("location_id", "session_id", "reservation_id")
                if hasattr(command, f)), None)
    if to is None and is_hub(party):
        # The CPO whose Location (or, for STOP_SESSION, Session) it names.
        module, oid = ((LOCATIONS.id, command.location_id) if hasattr(command, "location_id")
                       else (SESSIONS.id, getattr(command, "session_id", None)))
        to = await cpo_behind(node.engine, party, module, oid)
    data = command.to_json_bytes()
    out = tracker.Outgoing(uid, MODULE.id, command_type.value, ref, url, data.decode(), "POST",
                           join_url(base, command_type.value), content=data)
    assert node.client is not None, "start() the node first"
    await tracker.track_and_send(node.engine, node.client, party, out, node.config.roles, to)
    return uid
