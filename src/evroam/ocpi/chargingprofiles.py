"""ChargingProfiles module (mod_charging_profiles.asciidoc), OCPI 2.2.1."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, model_validator

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.types import MAX_CURRENT_A, MAX_POWER_KW, URL, DateTime, Quantity, Seconds, Timeout


def _one_decimal(value: Decimal) -> Decimal:
    # The spec: "Accepts at most one digit fraction (e.g. 8.1)"; OCPP charge
    # points take the limit with one decimal, so 7.25 could not be honoured as sent.
    scaled = value * 10
    if scaled != scaled.to_integral_value():
        raise ValueError("must have at most one digit after the decimal point")
    return value


# A charging rate in A or W (charging_rate_unit): the W bound here, the A bound
# in ChargingProfile, which knows the unit.
OneDecimalNumber = Annotated[Quantity(0, MAX_POWER_KW * 1000), AfterValidator(_one_decimal)]


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
    start_period: Seconds  # from the start of the profile
    limit: OneDecimalNumber


class ChargingProfile(OcpiModel):
    # Absent: relative to the start of charging.
    start_date_time: DateTime | None = None
    duration: Seconds | None = None
    charging_rate_unit: ChargingRateUnit
    min_charging_rate: OneDecimalNumber | None = None
    charging_profile_period: list[ChargingProfilePeriod] | None = None

    @model_validator(mode="after")
    def _amperes_in_range(self) -> Self:
        if self.charging_rate_unit is not ChargingRateUnit.A:
            return self
        rates = [("min_charging_rate", self.min_charging_rate)] + [
            (f"charging_profile_period.{i}.limit", p.limit) for i, p in enumerate(self.charging_profile_period or ())]
        for name, rate in rates:
            if rate is not None and rate > MAX_CURRENT_A:
                raise ValueError(f"{name}: must be between 0 and {MAX_CURRENT_A} A, got {rate}")
        return self


class ActiveChargingProfile(OcpiModel):
    start_date_time: DateTime
    charging_profile: ChargingProfile


class SetChargingProfile(OcpiModel):
    charging_profile: ChargingProfile
    response_url: URL


class ChargingProfileResponse(OcpiModel):
    result: ChargingProfileResponseType
    timeout: Timeout  # seconds


class ActiveChargingProfileResult(OcpiModel):
    result: ChargingProfileResultType
    # Expected with ACCEPTED; the spec does not make it a MUST, so not enforced.
    profile: ActiveChargingProfile | None = None


class ChargingProfileResult(OcpiModel):
    result: ChargingProfileResultType


class ClearProfileResult(OcpiModel):
    result: ChargingProfileResultType
