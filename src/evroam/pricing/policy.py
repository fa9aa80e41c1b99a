"""The choices OCPI 2.2.1 leaves open, in one place.

docs/pricing.md explains each field and why its default is what it is. The
defaults follow the 2.2.1 rules as clarified by 2.3.0; `ocpi_221_tariff14_literal`
reproduces the numbers printed in the 2.2.1 tariff_14 step_size examples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import StrEnum

ROUNDING_MODES = frozenset(
    {ROUND_HALF_UP, ROUND_HALF_EVEN, ROUND_HALF_DOWN, ROUND_UP, ROUND_DOWN, ROUND_CEILING, ROUND_FLOOR}
)


class TimeStepMode(StrEnum):
    """How step_size is applied to TIME and PARKING_TIME."""

    # The step of the last time-based period rounds the session total of that
    # period's own dimension; the other dimension is not rounded. This is the
    # CDR chapter's rule (21 min charging + 7 min parking -> 21 + 10) and what
    # tariff_4 case (b) needs (71 min parking -> 75, not 185 min total).
    LAST_DIMENSION = "last_dimension"
    # TIME and PARKING_TIME are summed and rounded together with the last step;
    # the extra goes to the last period. The 2.2.1 tariff_14 examples #1 and #3
    # were computed this way (0.383, 0.78); it contradicts tariff_4 (b).
    COMBINED = "combined"


class StepBasis(StrEnum):
    """Which quantity the step rounds when part of the session was free."""

    # Only quantities that a price component priced ("billable"); 2.3.0's
    # tariff_14 #3 text: "the total of billable parking time ... is 8 minutes.
    # This is rounded up to 15 minutes".
    BILLABLE = "billable"
    # Everything measured in the dimension, free periods included; the extra
    # is billed at the last paid component.
    CONNECTED = "connected"


class FlatMode(StrEnum):
    """When the once-per-session FLAT fee is decided."""

    # The first period (in time) in which an element with a FLAT component
    # matches decides it; a FLAT restricted to, say, min_duration is charged
    # once the session gets there.
    FIRST_MATCH = "first_match"
    # Only the session's first period counts: a fee is charged only when it
    # applies at the start.
    SESSION_START = "session_start"


class MissingVat(StrEnum):
    """What an absent PriceComponent.vat means for the incl. VAT amounts."""

    # "If omitted, no VAT is applicable": the amount incl. VAT equals the
    # amount excl. VAT for that component (it is *reported* as no VAT, not 0%).
    NO_VAT = "no_vat"
    # tariff_7's prose: "as no VAT information is given, it is not possible to
    # calculate total costs including VAT". Every total that includes such a
    # component gets no incl_vat.
    UNKNOWN = "unknown"


class LimitWithoutInclVat(StrEnum):
    """How a min_price/max_price that has no incl_vat limits the incl. VAT total."""

    # The excl. VAT limit scaled by an incl/excl ratio (the tariff's other
    # limit's, else the session's), so that the clamped incl. VAT total never
    # falls below the clamped excl. VAT total.
    SCALE = "scale"
    # The incl. VAT total is left unclamped.
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    # Amounts are computed exactly (Decimal) and rounded only when reported;
    # OCPI numbers use 4 decimals unless stated otherwise (types.asciidoc).
    places: int = 4
    rounding: str = ROUND_HALF_UP
    # Volumes in reported charging periods (kWh, hours).
    volume_places: int = 4
    time_step: TimeStepMode = TimeStepMode.LAST_DIMENSION
    step_basis: StepBasis = StepBasis.BILLABLE
    flat: FlatMode = FlatMode.FIRST_MATCH
    missing_vat: MissingVat = MissingVat.NO_VAT
    limit_without_incl_vat: LimitWithoutInclVat = LimitWithoutInclVat.SCALE
    # Off: the tariff valid at the session's start prices the whole session
    # (the common practice, and what consumer law in many countries requires).
    # On: a tariff that ends mid-session hands over to the connector's tariff
    # of the same type valid from then on, and a preference change switches to
    # that profile's tariff; step_size is not applied at the switch.
    switch_tariffs_mid_session: bool = False
    # Split periods at every instant a restriction can change outcome (time of
    # day, local midnight, DST change, duration and kWh thresholds, tariff
    # switch). Energy inside a split period is interpolated linearly.
    split_at_boundaries: bool = True
    # A session asking for a PROFILE_x or AD_HOC_PAYMENT tariff that the
    # connector lacks is priced with its REGULAR (or untyped) tariff.
    fallback_to_regular: bool = True
    # The consistency checker reports differences above this amount.
    tolerance: Decimal = Decimal("0.01")

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding: unknown mode {self.rounding!r}")
        if not 0 <= self.places <= 12 or not 0 <= self.volume_places <= 12:
            raise ValueError("places and volume_places must be between 0 and 12")
        if self.tolerance < 0:
            raise ValueError("tolerance must not be negative")

    def with_(self, **changes: object) -> PricingPolicy:
        return replace(self, **changes)

    @classmethod
    def ocpi_221_tariff14_literal(cls) -> PricingPolicy:
        """Reproduces the 2.2.1 text of tariff_14 #1 (0.383) and #3 (0.78)."""
        return cls(time_step=TimeStepMode.COMBINED, step_basis=StepBasis.BILLABLE)


DEFAULT_POLICY = PricingPolicy()
