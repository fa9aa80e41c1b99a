"""A CPO's command hooks to start from: `evroam serve --home DIR --hooks examples.cpo_hooks`
(run from the repository root), or copy this file into the node's home and set
`hooks = "cpo_hooks.py"` in evroam.toml.

It accepts START_SESSION, STOP_SESSION and UNLOCK_CONNECTOR. (evroam has
already checked the location, session and ownership; anything else answers
NOT_SUPPORTED.) The synchronous answer is ACCEPTED with a timeout. The charge
point's result is reported to the eMSP afterwards:

- With CPO_BACKEND_URL set, each command is POSTed there as JSON, using the
  node's shared HTTP client:

      {"command": "START_SESSION", "id": "<tracking id>", "partner": "<name>",
       "request": {<the OCPI command object>}}

  The operator's system answers `{"result": "ACCEPTED"}` (any
  CommandResultType, optionally with "message": "text"), and that answer is
  the result the eMSP gets. An unreachable backend, an HTTP error or an
  unusable answer gives FAILED. The backend creates and ends the sessions
  itself, through the admin API (POST /admin/sessions, POST
  /admin/sessions/{id}/stop).
- Without it, a charger is simulated: every command succeeds. START_SESSION
  creates an ACTIVE Session (pushed to the eMSP) and STOP_SESSION completes it.

Environment:
    CPO_BACKEND_URL         the operator's endpoint (unset: simulate a charger)
    CPO_COMMAND_TIMEOUT     seconds the eMSP is told to wait for the result (default 30)
    CPO_BACKEND_TIMEOUT     seconds to wait for the backend's answer (default 20)
    CPO_SESSION_CURRENCY    simulated sessions' currency (default EUR)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
import structlog

from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandResultType, CommandType
from evroam.ocpi.common import DisplayText
from evroam.ocpi.locations import Location, Status
from evroam.sync.tracker import ResultHandle
from evroam.modules.sessions import owner as sessions

log = structlog.get_logger("cpo_hooks")

HANDLED = (CommandType.START_SESSION, CommandType.STOP_SESSION, CommandType.UNLOCK_CONNECTOR)


def setup(node: Any) -> None:
    """Called once by `evroam serve --hooks`: register the command hooks."""
    backend = os.environ.get("CPO_BACKEND_URL", "").strip() or None
    timeout = int(os.environ.get("CPO_COMMAND_TIMEOUT", "30"))
    # Kept, so a background task is not collected before it finishes.
    tasks: set[asyncio.Task[Any]] = set()

    def later(coro: Any) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def hook(command_type: CommandType) -> None:
        async def on_command(command: Any, handle: ResultHandle) -> CommandResponse:
            if backend:
                later(ask_backend(node, backend, command_type, command, handle))
            else:
                later(simulate(node, command_type, command, handle))
            return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=timeout)

        node.on(command_type)(on_command)

    for command_type in HANDLED:
        hook(command_type)
    log.info("cpo_hooks.ready", mode=f"backend {backend}" if backend else "simulated charger",
             commands=[c.value for c in HANDLED])


# --- the operator's own system -------------------------------------------------------------


async def ask_backend(node: Any, url: str, command_type: CommandType, command: Any, handle: ResultHandle) -> None:
    body = {"command": command_type.value, "id": handle.id, "partner": handle.party.name,
            "request": command.to_wire()}
    wait = aiohttp.ClientTimeout(total=float(os.environ.get("CPO_BACKEND_TIMEOUT", "20")))
    try:
        async with node.http.post(url, json=body, timeout=wait) as response:
            answer = await response.json(content_type=None) if response.status < 300 else None
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        await handle.result(CommandResultType.FAILED, _text(f"the charging backend gave no answer: {exc}"))
        return
    result, message = _result_of(answer)
    if result is None:
        await handle.result(CommandResultType.FAILED, _text(f"the charging backend answered HTTP {status} "
                                                            "without a usable result"))
        return
    await handle.result(result, _text(message) if message else None)


def _result_of(answer: Any) -> tuple[CommandResultType | None, str | None]:
    if not isinstance(answer, dict):
        return None, None
    try:
        result = CommandResultType(answer.get("result"))
    except ValueError:
        return None, None
    message = answer.get("message")
    return result, message if isinstance(message, str) and message else None


def _text(text: str) -> list[DisplayText]:
    return [DisplayText(language="en", text=text[:512])]


# --- a simulated charger --------------------------------------------------------------------


async def simulate(node: Any, command_type: CommandType, command: Any, handle: ResultHandle) -> None:
    try:
        if command_type == CommandType.START_SESSION:
            await _start(node, command, handle)
        elif command_type == CommandType.STOP_SESSION:
            try:
                await sessions.stop(node, command.session_id)
            except sessions.SessionFinished as exc:
                await handle.result(CommandResultType.REJECTED, _text(str(exc)))
                return
            await handle.result(CommandResultType.ACCEPTED)
        else:
            await handle.result(CommandResultType.ACCEPTED)
    except Exception:
        log.exception("cpo_hooks.simulation_failed", command=command_type.value, id=handle.id)


async def _start(node: Any, command: Any, handle: ResultHandle) -> None:
    connector = _pick_connector(handle.location, command.evse_uid, command.connector_id)
    if connector is None:
        await handle.result(CommandResultType.EVSE_INOPERATIVE, _text("no such connector at this location"))
        return
    await handle.result(CommandResultType.ACCEPTED)
    token = command.token
    await sessions.start(
        node, location_id=command.location_id, evse_uid=connector[0], connector_id=connector[1],
        cdr_token={"country_code": token.country_code, "party_id": token.party_id, "uid": token.uid,
                   "type": token.type.value, "contract_id": token.contract_id},
        currency=os.environ.get("CPO_SESSION_CURRENCY", "EUR"), auth_method="COMMAND",
        authorization_reference=command.authorization_reference)


def _pick_connector(location: Location | None, evse_uid: str | None,
                    connector_id: str | None) -> tuple[str, str] | None:
    """The connector asked for, or, as a charge point would, the first one."""
    for evse in (location.evses if location else None) or ():
        if evse.status == Status.REMOVED or (evse_uid is not None and evse.uid.upper() != evse_uid.upper()):
            continue
        for c in evse.connectors:
            if connector_id is None or c.id.upper() == connector_id.upper():
                return evse.uid, c.id
    return None
