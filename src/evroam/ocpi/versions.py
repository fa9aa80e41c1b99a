"""Versions module (version_information_endpoint.asciidoc), OCPI 2.2.1."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.types import URL


class VersionNumber(StrEnum):
    V2_0 = "2.0"
    V2_1 = "2.1"
    V2_1_1 = "2.1.1"
    V2_2 = "2.2"
    V2_2_1 = "2.2.1"
    # Listed by 2.3.0 parties; we parse it so negotiation can skip it cleanly.
    V2_3_0 = "2.3.0"


class ModuleID(StrEnum):
    cdrs = "cdrs"
    chargingprofiles = "chargingprofiles"
    commands = "commands"
    credentials = "credentials"
    hubclientinfo = "hubclientinfo"
    locations = "locations"
    sessions = "sessions"
    tariffs = "tariffs"
    tokens = "tokens"
    # Specified only by the v2.3.0-payments release; served alongside 2.2.1.
    payments = "payments"


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class Version(OcpiModel):
    version: VersionNumber
    url: URL


class Endpoint(OcpiModel):
    # A plain string, not ModuleID: custom modules ("nltnm-tokens") are legal and
    # must not make a partner's whole version details unreadable.
    identifier: str = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")
    role: InterfaceRole
    url: URL


class VersionDetails(OcpiModel):
    version: VersionNumber
    endpoints: list[Endpoint] = Field(min_length=1)

    def endpoint(self, identifier: str, role: InterfaceRole | None = None) -> Endpoint | None:
        for ep in self.endpoints:
            if ep.identifier == identifier and (role is None or ep.role == role or identifier == "credentials"):
                return ep
        return None


SUPPORTED_VERSIONS: tuple[VersionNumber, ...] = (VersionNumber.V2_2_1,)


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def highest_mutual(ours: tuple[VersionNumber, ...], theirs: list[Version]) -> Version | None:
    """The highest version both sides speak, with the partner's URL for it."""
    mutual = [v for v in theirs if v.version in ours]
    return max(mutual, key=lambda v: version_key(v.version.value), default=None)
