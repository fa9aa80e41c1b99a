"""Tariffs module (mod_tariffs.asciidoc), OCPI 2.2.1.

The object models only. How a tariff prices a session lives in
`evroam.pricing`, which compiles these models once into plain tuples.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import DisplayText, Price
from evroam.ocpi.locations import EnergyMix
from evroam.ocpi.types import (
    URL,
    CiString,
    CountryCode,
    Currency,
    MAX_CURRENT_A,
    MAX_POWER_KW,
    MAX_SECONDS,
    Date,
    DateTime,
    Energy,
    IntRange,
    Money,
    PartyId,
    Percentage,
    Quantity,
    Seconds,
    TimeOfDay,
)


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class ReservationRestrictionType(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class PriceComponent(OcpiModel):
    type: TariffDimensionType
    # Never negative: a negative unit price would make a non-credit CDR with
    # negative totals, which mod_cdrs does not allow.
    price: Money
    # Absent means "no VAT applies", which is not the same as 0.0 (spec text):
    # keep None distinct all the way into the pricing engine.
    vat: Percentage | None = None
    # Seconds for TIME and PARKING_TIME, Wh for ENERGY. The free-of-charge
    # example uses step_size 0 on its FLAT component.
    step_size: IntRange(0, MAX_SECONDS)


class TariffRestrictions(OcpiModel):
    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None
    start_date: Date | None = None
    end_date: Date | None = None
    min_kwh: Energy | None = None
    max_kwh: Energy | None = None
    min_current: Quantity(0, MAX_CURRENT_A, "A") | None = None
    max_current: Quantity(0, MAX_CURRENT_A, "A") | None = None
    min_power: Quantity(0, MAX_POWER_KW, "kW") | None = None
    max_power: Quantity(0, MAX_POWER_KW, "kW") | None = None
    min_duration: Seconds | None = None
    max_duration: Seconds | None = None
    day_of_week: list[DayOfWeek] | None = None
    reservation: ReservationRestrictionType | None = None


class TariffElement(OcpiModel):
    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None

    @model_validator(mode="after")
    def _reservation_dimensions(self) -> TariffElement:
        # "A reservation can only have FLAT and TIME TariffDimensions."
        if self.restrictions is not None and self.restrictions.reservation is not None:
            for i, pc in enumerate(self.price_components):
                if pc.type not in (TariffDimensionType.FLAT, TariffDimensionType.TIME):
                    raise ValueError(
                        f"price_components.{i}.type: {pc.type.value} is not allowed in a reservation element "
                        "(restrictions.reservation is set); only FLAT and TIME are"
                    )
        return self


class Tariff(OcpiModel):
    country_code: CountryCode
    party_id: PartyId
    id: CiString(36)
    currency: Currency
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: URL | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: list[TariffElement] = Field(min_length=1)
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime
