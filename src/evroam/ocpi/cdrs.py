"""CDRs module (mod_cdrs.asciidoc), OCPI 2.2.1.

Also home to the classes the Sessions module borrows: CdrToken, AuthMethod,
ChargingPeriod, CdrDimension.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import Price
from evroam.ocpi.locations import ConnectorFormat, ConnectorType, GeoLocation, PowerType
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.tokens import TokenType
from evroam.ocpi.types import (
    Bool,
    CiString,
    Country3,
    CountryCode,
    Currency,
    MAX_CURRENT_A,
    MAX_ENERGY_KWH,
    MAX_HOURS,
    MAX_MONEY,
    MAX_POWER_KW,
    Bounds,
    DateTime,
    Energy,
    Hours,
    IntRange,
    Number,
    PartyId,
    Quantity,
    String,
)

# A normal CDR id is limited to 36; the extra 3 leave room for a credit suffix such as "-C".
CDR_ID_MAX = 36
CREDIT_CDR_ID_MAX = 39


class AuthMethod(StrEnum):
    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class CdrDimensionType(StrEnum):
    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"
    TIME = "TIME"


# "SHALL therefore only be used in Sessions."
SESSION_ONLY_DIMENSIONS = frozenset(
    {
        CdrDimensionType.CURRENT,
        CdrDimensionType.ENERGY_EXPORT,
        CdrDimensionType.ENERGY_IMPORT,
        CdrDimensionType.POWER,
        CdrDimensionType.STATE_OF_CHARGE,
    }
)


def _both_ways(hi: int, unit: str) -> Bounds:
    return Bounds(-hi, hi, unit)


# The range of each dimension's volume. Negative only where CdrDimensionType
# says so: "when negative", energy, current or power flowed from the EV to the grid.
VOLUME_BOUNDS: dict[CdrDimensionType, Bounds] = {
    CdrDimensionType.CURRENT: _both_ways(MAX_CURRENT_A, "A"),
    CdrDimensionType.ENERGY: _both_ways(MAX_ENERGY_KWH, "kWh"),
    CdrDimensionType.ENERGY_EXPORT: Bounds(0, MAX_ENERGY_KWH, "kWh"),
    CdrDimensionType.ENERGY_IMPORT: Bounds(0, MAX_ENERGY_KWH, "kWh"),
    CdrDimensionType.MAX_CURRENT: Bounds(0, MAX_CURRENT_A, "A"),
    CdrDimensionType.MIN_CURRENT: _both_ways(MAX_CURRENT_A, "A"),
    CdrDimensionType.MAX_POWER: Bounds(0, MAX_POWER_KW, "kW"),
    CdrDimensionType.MIN_POWER: _both_ways(MAX_POWER_KW, "kW"),
    CdrDimensionType.PARKING_TIME: Bounds(0, MAX_HOURS, "h"),
    CdrDimensionType.POWER: _both_ways(MAX_POWER_KW, "kW"),
    CdrDimensionType.RESERVATION_TIME: Bounds(0, MAX_HOURS, "h"),
    CdrDimensionType.STATE_OF_CHARGE: Bounds(0, 100, "%"),
    CdrDimensionType.TIME: Bounds(0, MAX_HOURS, "h"),
}


class CdrDimension(OcpiModel):
    type: CdrDimensionType
    volume: Number  # its range depends on the type: VOLUME_BOUNDS

    @model_validator(mode="after")
    def _volume_range(self) -> CdrDimension:
        try:
            VOLUME_BOUNDS[self.type](self.volume)
        except ValueError as exc:
            raise ValueError(f"volume: {self.type.value} {exc}") from None
        return self


class ChargingPeriod(OcpiModel):
    start_date_time: DateTime
    dimensions: list[CdrDimension] = Field(min_length=1)
    tariff_id: CiString(36) | None = None


class CdrToken(OcpiModel):
    # 2.2.1 made country_code and party_id required (the spec's own examples still lack them).
    country_code: CountryCode
    party_id: PartyId
    uid: CiString(36)
    type: TokenType
    contract_id: CiString(36)


class CdrLocation(OcpiModel):
    id: CiString(36)
    name: String(255) | None = None
    address: String(45)
    city: String(45)
    postal_code: String(10) | None = None
    state: String(20) | None = None
    country: Country3
    coordinates: GeoLocation
    # All three may be "#NA" for a reservation that never became a session.
    evse_uid: CiString(36)
    evse_id: CiString(48)
    connector_id: CiString(36)
    connector_standard: ConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType


class SignedValue(OcpiModel):
    nature: CiString(32)
    plain_data: String(512)
    signed_data: String(5000)


class SignedData(OcpiModel):
    encoding_method: CiString(36)
    encoding_method_version: IntRange(0, 2**31 - 1) | None = None
    public_key: String(512) | None = None
    signed_values: list[SignedValue] = Field(min_length=1)
    url: String(512) | None = None


class CdrPrice(Price):
    """A Price that may be negative: a Credit CDR carries the negated amounts.

    Subclasses Price so code that expects a Price keeps working; the CDR model
    refuses negative amounts unless the CDR is a credit.
    """

    excl_vat: Quantity(-MAX_MONEY, MAX_MONEY)
    incl_vat: Quantity(-MAX_MONEY, MAX_MONEY) | None = None


_COST_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


class CDR(OcpiModel):
    country_code: CountryCode
    party_id: PartyId
    id: CiString(CREDIT_CDR_ID_MAX)
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: CiString(36) | None = None
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: CiString(36) | None = None
    cdr_location: CdrLocation
    meter_id: String(255) | None = None
    currency: Currency
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)
    signed_data: SignedData | None = None
    total_cost: CdrPrice
    total_fixed_cost: CdrPrice | None = None
    total_energy: Energy  # "Total energy charged": a credit CDR repeats it, negating only costs
    total_energy_cost: CdrPrice | None = None
    total_time: Hours
    total_time_cost: CdrPrice | None = None
    total_parking_time: Hours | None = None
    total_parking_cost: CdrPrice | None = None
    total_reservation_cost: CdrPrice | None = None
    remark: String(255) | None = None
    invoice_reference_id: CiString(39) | None = None
    credit: Bool | None = None
    credit_reference_id: CiString(39) | None = None
    home_charging_compensation: Bool | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _cdr_rules(self) -> CDR:
        if self.credit:
            if self.credit_reference_id is None:
                raise ValueError("credit_reference_id: required when credit is true (a Credit CDR names the CDR it credits)")
        else:
            if len(self.id) > CDR_ID_MAX:
                raise ValueError(
                    f"id: a non-credit CDR id is at most {CDR_ID_MAX} characters, got {len(self.id)}"
                )
            # Only a Credit CDR carries negated amounts.
            for name in _COST_FIELDS:
                price = getattr(self, name)
                if price is not None and (price.excl_vat < 0 or (price.incl_vat is not None and price.incl_vat < 0)):
                    raise ValueError(f"{name}: must not be negative unless credit is true")
        for i, period in enumerate(self.charging_periods):
            for j, dim in enumerate(period.dimensions):
                if dim.type in SESSION_ONLY_DIMENSIONS:
                    raise ValueError(
                        f"charging_periods.{i}.dimensions.{j}.type: {dim.type.value} may only be used in Sessions, not in CDRs"
                    )
        return self
