"""Commands module (mod_commands.asciidoc): Receiver (CPO) and Sender (eMSP) routers.

CPO, a decision hook per command type. A command at a location we do not
have is 2003 (REJECTED) and a STOP_SESSION for a session we do not have is
UNKNOWN_SESSION before any hook is asked; then the hook decides, and without
one the answer is NOT_SUPPORTED:

    @node.on(CommandType.START_SESSION)
    async def start(command: StartSession, handle: ResultHandle) -> CommandResponse:
        asyncio.create_task(remote_start(command, handle))  # later: await handle.result(CommandResultType.ACCEPTED)
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

eMSP, a notification when a result arrives: `@node.on(CommandEvent.RESULT)`,
called with (Tracked, Party). The logic lives in server/asyncrequests.py
(sending commands: sync/commands.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from evroam.modules.events import CommandEvent
from evroam.ocpi.commands import CommandResult
from evroam.modules.commands.asyncrequests import (
    expect_tracked,
    store_result,
)
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import ctx_of, respond
from evroam.modules.commands.tracking import COMMANDS

router = APIRouter()


@router.post("/{command_type}/{uid}")
async def post_result(request: Request, command_type: str, uid: str):  # noqa: ANN201
    """The response_url of a command we sent: its CommandResult."""
    auth = await authenticate_registered(request)
    engine = ctx_of(request).engine
    await expect_tracked(engine, uid, COMMANDS, command_type, auth.party)
    result = await parse_body(request, CommandResult)
    tracked = await store_result(engine, uid, result)
    await ctx_of(request).hooks.fire(CommandEvent.RESULT, tracked, auth.party)
    return respond(request)
