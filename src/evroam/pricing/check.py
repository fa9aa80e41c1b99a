"""The eMSP side: re-price a received CDR and report where it differs.

The CDR is re-priced from the tariffs it carries (the snapshot the CPO says
applied), else from the tariffs we hold for its connector. Every cost field
the CDR reports is compared with ours, dimension by dimension, and so are
its quantities with its own charging periods. A difference counts when it
exceeds the tolerance (default 0.01 in the CDR's currency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from evroam.ocpi.cdrs import CDR
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import ci_key
from evroam.pricing.compiled import CompiledTariff, compile_tariff, to_us
from evroam.pricing.engine import price
from evroam.pricing.policy import DEFAULT_POLICY, PricingPolicy
from evroam.pricing.result import CdrTotals, Money, PricingResult
from evroam.pricing.select import NEG_INF, POS_INF, NoApplicableTariff, Segment, SessionContext, schedule
from evroam.pricing.timeline import Timeline

# Quantities (kWh, hours) are compared to this precision: 0.001 h is 3.6 s.
QUANTITY_TOLERANCE = Decimal("0.001")

_COSTS = (
    ("total_cost", "total"),
    ("total_fixed_cost", "fixed"),
    ("total_energy_cost", "energy"),
    ("total_time_cost", "time"),
    ("total_parking_cost", "parking"),
    ("total_reservation_cost", "reservation"),
)


@dataclass(frozen=True, slots=True)
class Difference:
    field: str  # e.g. "total_energy_cost.incl_vat", "total_parking_time", "currency"
    dimension: str  # total, fixed, energy, time, parking, reservation, quantity, currency
    reported: Decimal | str | None
    expected: Decimal | str | None

    @property
    def delta(self) -> Decimal | None:
        if isinstance(self.reported, Decimal) and isinstance(self.expected, Decimal):
            return self.reported - self.expected
        return None

    def __str__(self) -> str:
        d = self.delta
        extra = f" (delta {d:+})" if d is not None else ""
        return f"{self.field}: CDR says {self.reported}, tariff gives {self.expected}{extra}"


@dataclass(slots=True)
class CheckReport:
    cdr_id: str
    tolerance: Decimal
    differences: list[Difference]
    expected: CdrTotals
    result: PricingResult
    # Where the tariffs came from and other facts worth logging with a dispute.
    notes: list[str] = field(default_factory=list)
    # The CDR's quantities against its own periods (total_energy, total_time,
    # total_parking_time): worth a remark, but they do not change what is owed.
    inconsistencies: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No cost differs by more than the tolerance (and the currency agrees)."""
        return not self.differences

    def summary(self) -> str:
        if self.ok:
            lines = [f"CDR {self.cdr_id} matches its tariff (tolerance {self.tolerance})"]
        else:
            lines = [f"CDR {self.cdr_id}: {len(self.differences)} difference(s) above {self.tolerance}"]
            lines += [f"  - {d}" for d in self.differences]
        lines += [f"  ~ {d}" for d in self.inconsistencies]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cdr_id": self.cdr_id,
            "ok": self.ok,
            "tolerance": str(self.tolerance),
            "differences": [
                {
                    "field": d.field,
                    "dimension": d.dimension,
                    "reported": None if d.reported is None else str(d.reported),
                    "expected": None if d.expected is None else str(d.expected),
                    "delta": None if d.delta is None else str(d.delta),
                }
                for d in self.differences
            ],
            "inconsistencies": [
                {"field": d.field, "reported": str(d.reported), "expected": str(d.expected)}
                for d in self.inconsistencies
            ],
            "notes": list(self.notes),
            "breakdown": self.result.to_dict(),
        }


def _terms(t: Tariff) -> tuple[Any, ...]:
    """What prices a session (not last_updated, texts or URLs)."""
    return (t.currency, t.type, t.min_price, t.max_price, t.elements, t.start_date_time, t.end_date_time)


def _segments_from_periods(cdr: CDR, by_id: dict[str, CompiledTariff]) -> list[Segment] | None:
    """One segment per run of periods naming the same tariff; None when no period names one.

    Periods without tariff_id take the tariff of the period before them (the
    first ones that of the first named period): CPOs often name the tariff
    only where it changes.
    """
    named = [(to_us(cp.start_date_time), cp.tariff_id) for cp in sorted(cdr.charging_periods,
                                                                          key=lambda c: c.start_date_time)]
    if not any(tid for _, tid in named):
        return None
    first_named = next(tid for _, tid in named if tid)
    segments: list[Segment] = []
    current_id = None
    for t, tid in named:
        tid = tid or current_id or first_named
        if tid == current_id:
            continue
        ct = by_id.get(ci_key(tid))
        if ct is None:
            raise NoApplicableTariff(f"charging_periods: tariff {tid!r} is neither in the CDR nor among ours")
        lo = NEG_INF if not segments else t
        if segments:
            segments[-1] = (segments[-1][0], t, segments[-1][2])
        segments.append((lo, POS_INF, ct))
        current_id = tid
    return segments


def check_cdr(
    cdr: CDR,
    *,
    tariffs: Sequence[Tariff | CompiledTariff] | None = None,
    time_zone: str | None = None,
    context: SessionContext | None = None,
    policy: PricingPolicy = DEFAULT_POLICY,
    tolerance: Decimal | None = None,
) -> CheckReport:
    """Re-price `cdr` and list every difference above the tolerance.

    `tariffs`: the tariffs we hold for the CDR's connector; used when the
    CDR carries none, and for any tariff_id the CDR names but does not carry.
    `time_zone`: the Location's (2.2.1's CdrLocation has none); UTC if unknown.
    """
    tol = policy.tolerance if tolerance is None else tolerance
    notes: list[str] = []
    if time_zone is None:
        notes.append("time zone: UTC assumed (the CDR's location has none; pass the Location's time_zone)")
    ours = [compile_tariff(t) for t in (tariffs or ())]
    carried = [compile_tariff(t) for t in (cdr.tariffs or ())]
    by_id: dict[str, CompiledTariff] = {ci_key(t.id): t for t in ours}
    for t in carried:
        mine = by_id.get(ci_key(t.id))
        if mine is not None and _terms(mine.tariff) != _terms(t.tariff):
            notes.append(f"tariff {t.id}: the CDR's copy differs from ours; the CDR's copy was used")
        by_id[ci_key(t.id)] = t  # the CDR's snapshot, as it was at session start, wins

    timeline = Timeline.from_cdr(cdr, time_zone=time_zone)
    segments = _segments_from_periods(cdr, by_id)
    if segments is not None:
        notes.append("tariffs: as named by the charging periods' tariff_id")
    else:
        pool = carried or ours
        if not pool:
            raise NoApplicableTariff("tariffs: the CDR carries no tariff and none was given for its connector")
        notes.append("tariffs: from the CDR" if carried else "tariffs: ours for this connector")
        start, end = to_us(timeline.start), to_us(timeline.end)
        explicit = len(pool) == 1
        segments = schedule(pool, start, end, context, policy, explicit=explicit)
    result = price([], timeline, policy=policy, time_zone=time_zone, segments=segments)
    notes.extend(result.warnings)
    used_ids = {ci_key(t.id) for t in result.tariffs}
    unused = [t.id for t in ours if ci_key(t.id) not in used_ids]
    if unused and carried:
        notes.append(f"tariffs {', '.join(unused)}: given but not referenced by the CDR, not used")

    expected = result.totals
    sign = -1 if cdr.credit else 1
    diffs: list[Difference] = []
    if result.currency and ci_key(result.currency) != ci_key(cdr.currency):
        diffs.append(Difference("currency", "currency", cdr.currency, result.currency))
    exp_money: dict[str, Money] = {
        "total_cost": expected.total_cost,
        "total_fixed_cost": expected.total_fixed_cost,
        "total_energy_cost": expected.total_energy_cost,
        "total_time_cost": expected.total_time_cost,
        "total_parking_cost": expected.total_parking_cost,
        "total_reservation_cost": expected.total_reservation_cost,
    }
    for name, dim in _COSTS:
        reported = getattr(cdr, name)
        exp = exp_money[name]
        if reported is None:
            # An omitted sub-total is not a difference, unless we would charge under it.
            if abs(exp.excl) > tol:
                notes.append(f"{name}: not in the CDR; the tariff gives {exp.excl} excl. VAT")
            continue
        # A Credit CDR negates total_cost (and, for some CPOs, the sub-totals too).
        s = sign if (name == "total_cost" or reported.excl_vat < 0) else 1
        if abs(reported.excl_vat - s * exp.excl) > tol:
            diffs.append(Difference(f"{name}.excl_vat", dim, reported.excl_vat, s * exp.excl))
        if reported.incl_vat is not None:
            if exp.incl is None:
                notes.append(f"{name}.incl_vat: cannot be checked, a price component has no VAT rate")
            elif abs(reported.incl_vat - s * exp.incl) > tol:
                diffs.append(Difference(f"{name}.incl_vat", dim, reported.incl_vat, s * exp.incl))
        elif exp.incl is not None and name == "total_cost":
            notes.append("total_cost.incl_vat: not in the CDR")

    # Quantities: the CDR's totals against its own periods and timestamps.
    # Reported apart from the costs: they do not change what is owed.
    qtol = max(QUANTITY_TOLERANCE, Decimal(1).scaleb(-policy.volume_places))
    inconsistencies: list[Difference] = []
    reported_dims = {d.type.value for cp in cdr.charging_periods for d in cp.dimensions}
    span_h = Decimal((cdr.end_date_time - cdr.start_date_time).total_seconds()) / 3600
    checks: list[tuple[str, Decimal | None, Decimal, Decimal | None]] = [
        # total_time may or may not count a reservation before the session.
        ("total_time", cdr.total_time, expected.total_time, span_h),
    ]
    if "ENERGY" in reported_dims:
        checks.append(("total_energy", cdr.total_energy, expected.total_energy, None))
    if "PARKING_TIME" in reported_dims:
        checks.append(("total_parking_time", cdr.total_parking_time, expected.total_parking_time, None))
    for name, reported, exp_q, alt in checks:
        if reported is None:
            continue
        if abs(reported - exp_q) > qtol and (alt is None or abs(reported - alt) > qtol):
            inconsistencies.append(Difference(name, "quantity", reported, exp_q.quantize(qtol)))
    return CheckReport(cdr.id, tol, diffs, expected, result, notes, inconsistencies)
