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
from starlette.background import BackgroundTask
from starlette.responses import Response

from evroam.ocpi.commands import CommandType
from evroam.ocpi.common import Role
from evroam.ocpi.status import not_found
from evroam.modules.commands.asyncrequests import (
    COMMAND_MODELS,
    Callbacks,
    Caller,
    Decision,
    caller,
    receive_command,
)
from evroam.server import routing
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import ctx_of
from evroam.server.responses import ocpi_response
from evroam.store.parties import Party

router = APIRouter()


def callbacks_of(request: Request) -> Callbacks:
    callbacks = getattr(request.app.state, "callbacks", None)
    if callbacks is None:  # an app built without a node: results cannot be posted
        callbacks = request.app.state.callbacks = Callbacks(ctx_of(request).engine)
    return callbacks


def caller_of(request: Request, party: Party, module: str = "commands") -> Caller:
    return caller(party, routing.claimed(request), ctx_of(request).our_keys(Role.CPO), module)


def answer(request: Request, decision: Decision) -> Response:
    """The synchronous answer; results reported meanwhile are let go only
    after it has been sent (a result never overtakes its ACCEPTED)."""
    request.state.ocpi_status = decision.status_code
    response = ocpi_response(data_json=decision.response.to_json_bytes(), status_code=decision.status_code,
                             status_message=decision.status_message)
    if decision.handle is not None:
        response.background = BackgroundTask(decision.handle.release,
                                             decision.response.result.value)  # type: ignore[attr-defined]
    return response


@router.post("/{command_type}")
async def post_command(request: Request, command_type: str):  # noqa: ANN201
    auth = await authenticate_registered(request)
    try:
        ct = CommandType(command_type)  # enum values are case-sensitive
    except ValueError:
        raise not_found(f"unknown command {command_type!r}") from None
    command = await parse_body(request, COMMAND_MODELS[ct])
    decision = await receive_command(callbacks_of(request), caller_of(request, auth.party), ct, command,
                                     ctx_of(request).hooks.get(ct))
    return answer(request, decision)
