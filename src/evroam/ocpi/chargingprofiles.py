"""ChargingProfiles module (mod_charging_profiles.asciidoc), OCPI 2.2.1."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.types import URL, DateTime, Int, Number


def _one_decimal(value: Decimal) -> Decimal:
    # The spec: "Accepts at most one digit fraction (e.g. 8.1)"; OCPP charge
    # points take the limit with one decimal, so 7.25 could not be honoured as sent.
    scaled = value * 10
    if scaled != scaled.to_integral_value():
        raise ValueError("must have at most one digit after the decimal point")
    return value


OneDecimalNumber = Annotated[Number, AfterValidator(_one_decimal)]


class ChargingRateUnit(StrEnum):
    W = "W"
    A = "A"


class ChargingProfileResponseType(StrEnum):
    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ChargingProfileResultType(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


class ChargingProfilePeriod(OcpiModel):
    start_period: Int  # seconds from the start of the profile
    limit: OneDecimalNumber


class ChargingProfile(OcpiModel):
    # Absent: relative to the start of charging.
    start_date_time: DateTime | None = None
    duration: Int | None = None  # seconds
    charging_rate_unit: ChargingRateUnit
    min_charging_rate: OneDecimalNumber | None = None
    charging_profile_period: list[ChargingProfilePeriod] | None = None


class ActiveChargingProfile(OcpiModel):
    start_date_time: DateTime
    charging_profile: ChargingProfile


class SetChargingProfile(OcpiModel):
    charging_profile: ChargingProfile
    response_url: URL


class ChargingProfileResponse(OcpiModel):
    result: ChargingProfileResponseType
    timeout: Int  # seconds


class ActiveChargingProfileResult(OcpiModel):
    result: ChargingProfileResultType
    # Expected with ACCEPTED; the spec does not make it a MUST, so not enforced.
    profile: ActiveChargingProfile | None = None


class ChargingProfileResult(OcpiModel):
    result: ChargingProfileResultType


class ClearProfileResult(OcpiModel):
    result: ChargingProfileResultType
