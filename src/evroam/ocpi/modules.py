"""Facts about the object modules: who owns the data, how objects are keyed,
which interface each role implements (mod_*.asciidoc, "Interfaces")."""

from __future__ import annotations

from dataclasses import dataclass

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.cdrs import CDR
from evroam.ocpi.common import Role
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.tokens import Token
from evroam.ocpi.versions import InterfaceRole


@dataclass(frozen=True, slots=True)
class ObjectModule:
    id: str
    model: type[OcpiModel]
    owner: Role  # the role that owns the data and implements the Sender interface
    id_field: str = "id"
    typed: bool = False  # Tokens: identity is uid + type
    patchable: bool = False  # Receiver PATCH exists (Locations, Sessions, Tokens)
    deletable: bool = False  # Receiver DELETE exists (Tariffs)
    immutable: bool = False  # CDRs: POSTed once, never changed


TARIFFS = ObjectModule("tariffs", Tariff, Role.CPO, deletable=True)
LOCATIONS = ObjectModule("locations", Location, Role.CPO, patchable=True)
SESSIONS = ObjectModule("sessions", Session, Role.CPO, patchable=True)
CDRS = ObjectModule("cdrs", CDR, Role.CPO, immutable=True)
TOKENS = ObjectModule("tokens", Token, Role.EMSP, id_field="uid", typed=True, patchable=True)

OBJECT_MODULES: dict[str, ObjectModule] = {m.id: m for m in (LOCATIONS, TARIFFS, SESSIONS, CDRS, TOKENS)}

# Which interface a role implements per module (2.2.1 typical roles; an SCSP
# sends chargingprofiles and receives sessions; a HUB does both sides).
INTERFACES: dict[Role, dict[str, InterfaceRole]] = {
    Role.CPO: {
        "locations": InterfaceRole.SENDER, "tariffs": InterfaceRole.SENDER, "sessions": InterfaceRole.SENDER,
        "cdrs": InterfaceRole.SENDER, "tokens": InterfaceRole.RECEIVER, "commands": InterfaceRole.RECEIVER,
        "chargingprofiles": InterfaceRole.RECEIVER,
    },
    Role.EMSP: {
        "locations": InterfaceRole.RECEIVER, "tariffs": InterfaceRole.RECEIVER, "sessions": InterfaceRole.RECEIVER,
        "cdrs": InterfaceRole.RECEIVER, "tokens": InterfaceRole.SENDER, "commands": InterfaceRole.SENDER,
        "chargingprofiles": InterfaceRole.SENDER,
    },
}


def owner_of(module: str) -> Role | None:
    m = OBJECT_MODULES.get(module)
    return m.owner if m else None
