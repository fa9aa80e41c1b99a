"""Commands, the CPO's side (it owns the charge points): the commands it
takes, and how its answers and results take shape (sync/tracker.py)."""

from __future__ import annotations

from typing import Any

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.commands import (CancelReservation, CommandResponse, CommandResponseType, CommandResult,
                                  CommandResultType, CommandType, ReserveNow, StartSession, StopSession,
                                  UnlockConnector)
from evroam.ocpi.common import DisplayText
from evroam.sync.tracker import Answers

COMMAND_MODELS: dict[CommandType, type[OcpiModel]] = {
    CommandType.CANCEL_RESERVATION: CancelReservation,
    CommandType.RESERVE_NOW: ReserveNow,
    CommandType.START_SESSION: StartSession,
    CommandType.STOP_SESSION: StopSession,
    CommandType.UNLOCK_CONNECTOR: UnlockConnector,
}


def result_body(type_: str, result: Any, message: list[DisplayText] | None, profile: Any) -> CommandResult:
    """What `handle.result(...)` posts: a CommandResult, given or made."""
    if isinstance(result, CommandResult):
        return result
    if profile is not None:
        raise ValueError("a CommandResult has no profile")
    return CommandResult(result=CommandResultType(result), message=message)


ANSWERS = Answers(CommandResponse, CommandResponseType, result_body)
