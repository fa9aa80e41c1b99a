"""Sessions module (mod_sessions.asciidoc), OCPI 2.2.1."""

from __future__ import annotations

from enum import StrEnum

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.cdrs import AuthMethod, CdrToken, ChargingPeriod
from evroam.ocpi.common import Price
from evroam.ocpi.tokens import ProfileType
from evroam.ocpi.types import (
    Bool,
    CiString,
    CountryCode,
    Currency,
    DateTime,
    Energy,
    PartyId,
    String,
)


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    # The prose once says "RESERVED"; the enum value is RESERVATION.
    RESERVATION = "RESERVATION"


class ChargingPreferencesResponse(StrEnum):
    ACCEPTED = "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED"


class ChargingPreferences(OcpiModel):
    profile_type: ProfileType
    departure_time: DateTime | None = None
    energy_need: Energy | None = None
    # Absent means false; kept absent rather than defaulted so a round trip is byte-identical.
    discharge_allowed: Bool | None = None


class Session(OcpiModel):
    country_code: CountryCode
    party_id: PartyId
    id: CiString(36)
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    # "How many kWh were charged": never negative. Energy fed back to the grid
    # shows in the periods (a negative ENERGY, ENERGY_EXPORT).
    kwh: Energy
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: CiString(36) | None = None
    location_id: CiString(36)
    # evse_uid and connector_id may be "#NA" for a reservation without an assigned EVSE.
    evse_uid: CiString(36)
    connector_id: CiString(36)
    meter_id: String(255) | None = None
    currency: Currency
    charging_periods: list[ChargingPeriod] | None = None
    # Absent does not mean free; 0 does.
    total_cost: Price | None = None
    status: SessionStatus
    last_updated: DateTime
