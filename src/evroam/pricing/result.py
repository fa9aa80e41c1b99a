"""What the pricing engine returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from evroam.pricing.policy import PricingPolicy

if TYPE_CHECKING:
    from evroam.ocpi.tariffs import Tariff
    from evroam.pricing.compiled import Component, CompiledTariff

ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_US = Decimal(3_600_000_000)

# Cost categories, in CDR-total order.
CAT_FIXED, CAT_ENERGY, CAT_TIME, CAT_PARKING, CAT_RESERVATION = range(5)
CATEGORY_NAMES = ("fixed", "energy", "time", "parking", "reservation")
KIND_NAMES = ("CHARGING", "PARKING", "RESERVATION")


def from_us(t_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=t_us)


class Money(NamedTuple):
    excl: Decimal
    # None: not computable (an absent VAT under MissingVat.UNKNOWN).
    incl: Decimal | None

    def rounded(self, policy: PricingPolicy) -> Money:
        q = Decimal(1).scaleb(-policy.places)
        return Money(
            self.excl.quantize(q, rounding=policy.rounding),
            None if self.incl is None else self.incl.quantize(q, rounding=policy.rounding),
        )

    def __neg__(self) -> Money:
        return Money(-self.excl, None if self.incl is None else -self.incl)

    def __add__(self, other: object) -> Money:  # type: ignore[override]
        if not isinstance(other, Money):
            return NotImplemented
        incl = None if self.incl is None or other.incl is None else self.incl + other.incl
        return Money(self.excl + other.excl, incl)


ZERO_MONEY = Money(ZERO, ZERO)


@dataclass(frozen=True, slots=True)
class CostLine:
    """The cost of one dimension in one period."""

    dimension: str  # FLAT, ENERGY, TIME, PARKING_TIME (TIME also for reservation time)
    category: str  # fixed, energy, time, parking, reservation
    volume: Decimal  # kWh or hours actually used in the period (1 for FLAT)
    billed_volume: Decimal  # after step_size (only the session's last line differs)
    price: Decimal
    vat: Decimal | None
    step_size: int
    tariff_id: str
    element_index: int
    cost: Money  # rounded per the policy
    exact: Money  # unrounded


@dataclass(frozen=True, slots=True)
class PricedPeriod:
    start: datetime
    end: datetime
    kind: str  # CHARGING, PARKING, RESERVATION
    tariff_id: str | None
    energy_kwh: Decimal
    duration_h: Decimal  # priced time, hours
    current_min: Decimal | None
    current_max: Decimal | None
    power_min: Decimal | None
    power_max: Decimal | None
    lines: tuple[CostLine, ...]


class CdrTotals(NamedTuple):
    total_cost: Money
    total_fixed_cost: Money
    total_energy_cost: Money
    total_time_cost: Money
    total_parking_cost: Money
    total_reservation_cost: Money
    total_energy: Decimal  # kWh
    total_time: Decimal  # hours, charging + parking
    total_parking_time: Decimal  # hours
    total_reservation_time: Decimal  # hours

    def cost_fields(self) -> dict[str, Money]:
        return {
            "total_cost": self.total_cost,
            "total_fixed_cost": self.total_fixed_cost,
            "total_energy_cost": self.total_energy_cost,
            "total_time_cost": self.total_time_cost,
            "total_parking_cost": self.total_parking_cost,
            "total_reservation_cost": self.total_reservation_cost,
        }


class PricingResult:
    """Costs per period and the CDR totals of one priced session."""

    __slots__ = ("currency", "time_zone", "policy", "_sums", "_unclamped", "_total", "limit_applied", "totals",
                 "tariffs", "warnings", "rows", "_periods")

    def __init__(self, currency: str, time_zone: str, policy: PricingPolicy,
                 sums: tuple[list[Decimal], list[Decimal], int], unclamped: tuple[Decimal, Decimal | None],
                 total: tuple[Decimal, Decimal | None], limit_applied: str | None, totals: CdrTotals,
                 tariffs: tuple[CompiledTariff, ...], warnings: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.currency = currency
        self.time_zone = time_zone
        self.policy = policy
        self._sums = sums
        self._unclamped = unclamped
        self._total = total
        # "min_price", "max_price" or None.
        self.limit_applied = limit_applied
        # Rounded per the policy.
        self.totals = totals
        self.tariffs = tariffs
        self.warnings = warnings
        # Raw rows from the engine: ((start_us, end_us, kind, qty_us, kWh, cmin, cmax, pmin, pmax), tariff,
        # lines), where a line is [component, volume, billed_volume] (kWh, µs, or 1 for FLAT).
        self.rows = rows
        self._periods: tuple[PricedPeriod, ...] | None = None

    def __repr__(self) -> str:
        return f"PricingResult({self.currency} {self.totals.total_cost}, periods={len(self.rows)})"

    @property
    def exact(self) -> tuple[Money, ...]:
        """Unrounded sums per category (fixed, energy, time, parking, reservation), before min/max price."""
        ex, inc, unknown = self._sums
        return tuple(Money(ex[c], None if unknown >> c & 1 else inc[c]) for c in range(5))

    @property
    def exact_unclamped(self) -> Money:
        return Money(*self._unclamped)

    @property
    def exact_total(self) -> Money:
        return Money(*self._total)

    @property
    def used_tariffs(self) -> tuple[Tariff, ...]:
        return tuple(t.tariff for t in self.tariffs)

    @property
    def periods(self) -> tuple[PricedPeriod, ...]:
        if self._periods is None:
            self._periods = tuple(self._period(r) for r in self.rows)
        return self._periods

    def _period(self, row: tuple[Any, ...]) -> PricedPeriod:
        (start, end, kind, qty, energy, cmin, cmax, pmin, pmax), ct, raw_lines = row
        lines = []
        for comp, vol, billed in raw_lines:
            comp_t: Component = comp
            c_ex = comp_t.price * billed
            if comp_t.dim >= 2:
                c_ex = c_ex / _HOUR_US
                vol = Decimal(vol) / _HOUR_US
                billed = Decimal(billed) / _HOUR_US
            elif comp_t.dim == 0:
                vol = billed = Decimal(1)
            c_in = c_ex * comp_t.factor if comp_t.factor is not None else c_ex
            if comp_t.factor is None and self.policy.missing_vat.value == "unknown":
                c_in = None
            exact = Money(c_ex, c_in)
            lines.append(
                CostLine(
                    dimension=("FLAT", "ENERGY", "TIME", "PARKING_TIME")[comp_t.dim],
                    category=CATEGORY_NAMES[comp_t.cat],
                    volume=vol,
                    billed_volume=billed,
                    price=comp_t.price,
                    vat=comp_t.vat,
                    step_size=comp_t.step,
                    tariff_id=comp_t.tariff.id,
                    element_index=comp_t.element,
                    cost=exact.rounded(self.policy),
                    exact=exact,
                )
            )
        return PricedPeriod(
            start=from_us(start),
            end=from_us(end),
            kind=KIND_NAMES[kind],
            tariff_id=None if ct is None else ct.id,
            energy_kwh=energy,
            duration_h=Decimal(qty) / _HOUR_US,
            current_min=cmin,
            current_max=cmax,
            power_min=pmin,
            power_max=pmax,
            lines=tuple(lines),
        )

    # --- presentation -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready breakdown (numbers as strings, to keep Decimal exact)."""

        def money(m: Money) -> dict[str, str | None]:
            return {"excl_vat": str(m.excl), "incl_vat": None if m.incl is None else str(m.incl)}

        vq = Decimal(1).scaleb(-self.policy.volume_places)
        t = self.totals
        return {
            "currency": self.currency,
            "time_zone": self.time_zone,
            "tariffs": [c.id for c in self.tariffs],
            "periods": [
                {
                    "start": p.start.isoformat().replace("+00:00", "Z"),
                    "end": p.end.isoformat().replace("+00:00", "Z"),
                    "kind": p.kind,
                    "tariff_id": p.tariff_id,
                    "energy_kwh": str(p.energy_kwh.quantize(vq)),
                    "duration_h": str(p.duration_h.quantize(vq)),
                    "lines": [
                        {
                            "dimension": ln.dimension,
                            "category": ln.category,
                            "volume": str(ln.volume.quantize(vq)),
                            "billed_volume": str(ln.billed_volume.quantize(vq)),
                            "price": str(ln.price),
                            "vat": None if ln.vat is None else str(ln.vat),
                            "step_size": ln.step_size,
                            "element": ln.element_index,
                            "cost": money(ln.cost),
                        }
                        for ln in p.lines
                    ],
                }
                for p in self.periods
            ],
            "totals": {
                **{k: money(v) for k, v in t.cost_fields().items()},
                "total_energy": str(t.total_energy),
                "total_time": str(t.total_time),
                "total_parking_time": str(t.total_parking_time),
                "total_reservation_time": str(t.total_reservation_time),
            },
            "limit_applied": self.limit_applied,
            "unclamped_total": money(self.exact_unclamped.rounded(self.policy)),
            "warnings": list(self.warnings),
        }
