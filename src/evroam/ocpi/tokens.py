"""Tokens module (mod_tokens.asciidoc), OCPI 2.2.1.

ProfileType belongs to the Sessions chapter (mod_sessions.asciidoc) but lives
here because Token.default_profile_type needs it and sessions.py imports
tokens, not the other way round.
"""

from __future__ import annotations

from enum import StrEnum

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import DisplayText
from evroam.ocpi.types import Bool, CiString, CountryCode, DateTime, LanguageCode, PartyId, String


class TokenType(StrEnum):
    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(StrEnum):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class AllowedType(StrEnum):
    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class ProfileType(StrEnum):
    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class EnergyContract(OcpiModel):
    supplier_name: String(64)
    contract_id: String(64) | None = None


class Token(OcpiModel):
    country_code: CountryCode
    party_id: PartyId
    uid: CiString(36)
    # Required in the object. "No type means RFID" is a rule for the `?type=`
    # URL parameter only.
    type: TokenType
    contract_id: CiString(36)
    visual_number: String(64) | None = None
    issuer: String(64)
    group_id: CiString(36) | None = None
    valid: Bool
    whitelist: WhitelistType
    language: LanguageCode | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None
    last_updated: DateTime


class LocationReferences(OcpiModel):
    location_id: CiString(36)
    evse_uids: list[CiString(36)] | None = None


class AuthorizationInfo(OcpiModel):
    allowed: AllowedType
    token: Token
    location: LocationReferences | None = None
    authorization_reference: CiString(36) | None = None
    info: DisplayText | None = None
