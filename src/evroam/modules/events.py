"""Every hook event, in one place. Register a hook with `@node.on(EVENT)`.

| event | when it fires | the hook | its return value |
|---|---|---|---|
| `Received.LOCATION` | eMSP: a CPO's Location, EVSE or Connector PUT/PATCH changed the Location we hold; a pull stored a new version | `hook(location: Location, party: Party)` | ignored |
| `Received.TARIFF` | eMSP: a Tariff PUT (or a pull) stored a new version | `hook(tariff: Tariff, party: Party)` | ignored |
| `Received.SESSION` | eMSP: a Session PUT or PATCH (or a pull) stored a new version | `hook(session: Session, party: Party)` | ignored |
| `Received.CDR` | eMSP: a CDR was POSTed (or pulled) and stored, ACCEPTED or DISPUTED | `hook(cdr: CDR, party: Party)` | ignored |
| `Received.TOKEN` | CPO: a Token PUT or PATCH (or a pull) stored a new version; a real-time authorization's answer carried a newer one | `hook(token: Token, party: Party)` | ignored |
| `Received.CLIENT_INFO` | any role but HUB: a Hub PUT a ClientInfo (another party's connection status) newer than the one we hold; a pull stored one | `hook(client_info: ClientInfo, party: Party)` | ignored |
| `Authorize.TOKEN` | eMSP: a CPO POSTs `{uid}/authorize` for one of our tokens | `hook(token: Token, location: LocationReferences \\| None, party: Party)` | `AllowedType` or a whole `AuthorizationInfo`; raise `LocationRequired` for 2002. No hook: ALLOWED if the token is valid, else BLOCKED |
| `SessionEvent.CHARGING_PREFERENCES` | CPO: an eMSP PUTs charging preferences for its ongoing session at a CHARGING_PREFERENCES_CAPABLE EVSE | `hook(session: Session, preferences: ChargingPreferences, party: Party)` | a `ChargingPreferencesResponse`; no hook, or anything else: NOT_POSSIBLE |
| `CommandType.START_SESSION`, `CommandType.STOP_SESSION`, `CommandType.RESERVE_NOW`, `CommandType.CANCEL_RESERVATION`, `CommandType.UNLOCK_CONNECTOR` | CPO: an eMSP POSTs that command, naming a location (STOP_SESSION: a session) we hold | `hook(command, handle: ResultHandle)`; report later with `await handle.result(CommandResultType...)` | a `CommandResponse` (or a bare `CommandResponseType`, timeout 60 s). No hook: NOT_SUPPORTED; a hook that raises: REJECTED with 3000 |
| `CommandEvent.RESULT` | eMSP: a CPO POSTed the result of a command we sent | `hook(tracked: Tracked, party: Party)` | ignored |
| `ChargingProfileEvent.GET_ACTIVE`, `ChargingProfileEvent.SET`, `ChargingProfileEvent.CLEAR` | CPO: an eMSP/SCSP asks for, sets or clears a session's charging profile | `hook(req: ChargingProfileRequest, handle: ResultHandle)`; report later with `await handle.result(ChargingProfileResultType...)` | a `ChargingProfileResponse` (or a bare `ChargingProfileResponseType`). No hook: NOT_SUPPORTED |
| `ChargingProfileEvent.RESULT` | eMSP/SCSP: a CPO POSTed the result of a charging-profile request we sent | `hook(tracked: Tracked, party: Party)` | ignored |
| `ChargingProfileEvent.ACTIVE_PROFILE` | eMSP/SCSP: a CPO PUT a session's ActiveChargingProfile newer than the one we hold | `hook(session_id: str, profile: ActiveChargingProfile, party: Party)` | ignored |

A notification hook ("ignored") that raises is logged and undoes nothing:
what the protocol did stays done. Which process runs which hook: docs/hooks.md.

Generic code names no module: it fires `evroam.hooks.received(module_id)`,
which is the value of the `Received` member of that module.
"""

from __future__ import annotations

from enum import StrEnum

from evroam.hooks import received
from evroam.ocpi.commands import CommandType


class Received(StrEnum):
    """An object a partner pushed to us (or we pulled), after it is stored."""

    LOCATION = received("locations")
    TARIFF = received("tariffs")
    SESSION = received("sessions")
    CDR = received("cdrs")
    TOKEN = received("tokens")
    CLIENT_INFO = received("hubclientinfo")


class Authorize(StrEnum):
    """Hook events of the Tokens Sender."""

    TOKEN = "authorize.tokens"


class SessionEvent(StrEnum):
    """Sessions hooks that answer (rather than notify)."""

    CHARGING_PREFERENCES = "sessions.charging_preferences"


class CommandEvent(StrEnum):
    RESULT = "commands.result"


class ChargingProfileEvent(StrEnum):
    # CPO decision hooks
    GET_ACTIVE = "chargingprofiles.GET_ACTIVE"
    SET = "chargingprofiles.SET"
    CLEAR = "chargingprofiles.CLEAR"
    # eMSP/SCSP notifications
    RESULT = "chargingprofiles.result"
    ACTIVE_PROFILE = "chargingprofiles.active_profile"


# The CPO's command hooks are keyed by the command itself (CommandType, from ocpi).
CATALOGUE: tuple[type[StrEnum], ...] = (
    Received, Authorize, SessionEvent, CommandType, CommandEvent, ChargingProfileEvent,
)


def every_event() -> list[StrEnum]:
    return [event for group in CATALOGUE for event in group]


__all__ = ["CATALOGUE", "Authorize", "ChargingProfileEvent", "CommandEvent", "CommandType", "Received",
           "SessionEvent", "every_event"]
