"""OCPI 2.2.1 tariff pricing: pure logic, no I/O.

- `price(tariffs, timeline, ...)` prices a session (engine.py);
- `build_cdr` / `credit_cdr` make CDRs (builder.py);
- `check_cdr` re-prices a received CDR and reports differences (check.py);
- `PricingPolicy` holds every choice the specification leaves open (policy.py).
"""

from evroam.pricing.builder import CdrBuildError, build_cdr, credit_cdr
from evroam.pricing.check import CheckReport, Difference, check_cdr
from evroam.pricing.compiled import CompiledTariff, compile_tariff
from evroam.pricing.engine import price
from evroam.pricing.policy import (
    DEFAULT_POLICY,
    FlatMode,
    LimitWithoutInclVat,
    MissingVat,
    PricingPolicy,
    StepBasis,
    TimeStepMode,
)
from evroam.pricing.result import CdrTotals, CostLine, Money, PricedPeriod, PricingResult
from evroam.pricing.select import NoApplicableTariff, SessionContext
from evroam.pricing.timeline import PeriodKind, Timeline, TimelineError, TimelinePeriod, charging, parking, reservation

__all__ = [
    "DEFAULT_POLICY", "CdrBuildError", "CdrTotals", "CheckReport", "CompiledTariff", "CostLine", "Difference",
    "FlatMode", "LimitWithoutInclVat", "MissingVat", "Money", "NoApplicableTariff", "PeriodKind", "PricedPeriod",
    "PricingPolicy", "PricingResult", "SessionContext", "StepBasis", "TimeStepMode", "Timeline", "TimelineError",
    "TimelinePeriod", "build_cdr", "charging", "check_cdr", "compile_tariff", "credit_cdr", "parking", "price",
    "reservation",
]
