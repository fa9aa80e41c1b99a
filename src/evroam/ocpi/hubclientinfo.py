"""HubClientInfo module (mod_hub_client_info.asciidoc), OCPI 2.2.1."""

from __future__ import annotations

from enum import StrEnum

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import Role
from evroam.ocpi.types import CountryCode, DateTime, PartyId


class ConnectionStatus(StrEnum):
    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


class ClientInfo(OcpiModel):
    party_id: PartyId
    country_code: CountryCode
    role: Role
    status: ConnectionStatus
    last_updated: DateTime
