"""Commands, Sender interface (the eMSP): POST /{command_type}/{uid}, the
response_url of a command we sent (sending: client.py).

A notification when a result arrives: `@node.on(CommandEvent.RESULT)`,
called with (Tracked, Party). Matching and timeouts: sync/tracker.py.
"""

from __future__ import annotations


from fastapi import APIRouter, Request

from evroam.modules.commands import MODULE
from evroam.modules.events import CommandEvent
from evroam.ocpi.commands import CommandResult
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import ctx_of, respond
from evroam.sync.tracker import expect_tracked, store_result

router = APIRouter()


@router.post("/{command_type}/{uid}")
async def post_result(request: Request, command_type: str, uid: str):
    """The response_url of a command we sent: its CommandResult."""
    auth = await authenticate_registered(request)
    engine = ctx_of(request).engine
    await expect_tracked(engine, uid, MODULE.id, command_type, auth.party)
    result = await parse_body(request, CommandResult)
    tracked = await store_result(engine, uid, result)
    await ctx_of(request).hooks.fire(CommandEvent.RESULT, tracked, auth.party)
    return respond(request)
