"""A Tariff compiled once into what the pricing loop needs.

The pydantic model is read once: restrictions become one generated Python
function that returns, for a period's context, the bit mask of the elements
whose restrictions all hold; the first-matching component per dimension is
then looked up per mask (and cached). Times of day become seconds, dates
become day numbers, durations microseconds, so the loop touches no pydantic
object, no datetime and no zoneinfo.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Callable

from evroam.ocpi.tariffs import ReservationRestrictionType, Tariff, TariffDimensionType, TariffRestrictions, TariffType
from evroam.pricing.result import CAT_ENERGY, CAT_FIXED, CAT_PARKING, CAT_RESERVATION, CAT_TIME

FLAT, ENERGY, TIME, PARKING = 0, 1, 2, 3
DIM_NAMES = ("FLAT", "ENERGY", "TIME", "PARKING_TIME")
_DIM_CODE = {
    TariffDimensionType.FLAT: FLAT,
    TariffDimensionType.ENERGY: ENERGY,
    TariffDimensionType.TIME: TIME,
    TariffDimensionType.PARKING_TIME: PARKING,
}
_DOW = {"MONDAY": 0, "TUESDAY": 1, "WEDNESDAY": 2, "THURSDAY": 3, "FRIDAY": 4, "SATURDAY": 5, "SUNDAY": 6}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HUNDRED = Decimal(100)
_ONE = Decimal(1)

# What a FLAT fee counts towards in the CDR totals.
FIXED, PARKING_FEE, RESERVATION_FEE = "fixed", "parking", "reservation"

# Reservation state passed to the matcher.
RES_NONE, RES_ACTIVE, RES_EXPIRED = 0, 1, 2


def to_us(value: datetime) -> int:
    """Microseconds since the epoch, exactly (no float)."""
    d = value - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


class Component:
    """One price component, with where it came from."""

    __slots__ = ("dim", "price", "vat", "factor", "step", "element", "tariff", "flat_kind", "cat")

    def __init__(self, dim: int, price: Decimal, vat: Decimal | None, step: int, element: int,
                 tariff: CompiledTariff, flat_kind: str) -> None:
        self.dim = dim
        self.price = price
        self.vat = vat
        # None means "no VAT applies", kept apart from a 0% rate.
        self.factor = None if vat is None else _ONE + vat / _HUNDRED
        # step_size 0 (used on FLAT in the free-of-charge example) means no rounding.
        self.step = step if step > 0 else 1
        self.element = element
        self.tariff = tariff
        self.flat_kind = flat_kind
        # The CDR total this component's cost counts towards.
        if flat_kind == RESERVATION_FEE:
            self.cat = CAT_RESERVATION
        elif dim == FLAT:
            self.cat = CAT_PARKING if flat_kind == PARKING_FEE else CAT_FIXED
        else:
            self.cat = (CAT_FIXED, CAT_ENERGY, CAT_TIME, CAT_PARKING)[dim]

    def __repr__(self) -> str:
        return (f"Component({DIM_NAMES[self.dim]}, price={self.price}, vat={self.vat}, step={self.step}, "
                f"element={self.element}, tariff={self.tariff.id!r})")


def _seconds(hhmm: str) -> int:
    return int(hhmm[:2]) * 3600 + int(hhmm[3:5]) * 60


class CompiledTariff:
    """A Tariff ready for the pricing loop. Build with `compile_tariff`."""

    __slots__ = (
        "tariff", "id", "currency", "type", "valid_from_us", "valid_to_us",
        "min_excl", "min_incl", "max_excl", "max_incl",
        "components", "order", "match", "mask", "source", "_choices",
        "tod_bounds", "needs_local", "dur_bounds", "kwh_bounds", "has_reservation",
    )

    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        self.id = tariff.id
        self.currency = tariff.currency
        self.type: TariffType | None = tariff.type
        self.valid_from_us = to_us(tariff.start_date_time) if tariff.start_date_time else None
        self.valid_to_us = to_us(tariff.end_date_time) if tariff.end_date_time else None
        self.min_excl = tariff.min_price.excl_vat if tariff.min_price else None
        self.min_incl = tariff.min_price.incl_vat if tariff.min_price else None
        self.max_excl = tariff.max_price.excl_vat if tariff.max_price else None
        self.max_incl = tariff.max_price.incl_vat if tariff.max_price else None
        self._choices: dict[int, tuple[Any, Any, Any, Any]] = {}

        comps: list[dict[int, Component]] = []
        expires_first: list[int] = []
        others: list[int] = []
        tod: set[int] = set()
        durs: set[int] = set()
        kwhs: set[Decimal] = set()
        needs_midnight = False
        self.has_reservation = False
        session_tests: list[str] = []
        reservation_tests: list[str] = []
        consts: dict[str, Any] = {}

        def const(value: Any) -> str:
            name = f"c{len(consts)}"
            consts[name] = value
            return name

        for i, el in enumerate(tariff.elements):
            r = el.restrictions or TariffRestrictions()
            dims = {pc.type for pc in el.price_components}
            if r.reservation is not None:
                flat_kind = RESERVATION_FEE
                self.has_reservation = True
            elif dims - {TariffDimensionType.FLAT} == {TariffDimensionType.PARKING_TIME}:
                # A fee in an element that otherwise only prices parking is a parking fee.
                flat_kind = PARKING_FEE
            else:
                flat_kind = FIXED
            per_dim: dict[int, Component] = {}
            for pc in el.price_components:
                code = _DIM_CODE[pc.type]
                # Two components of one dimension in one element: the first one counts,
                # as with elements.
                per_dim.setdefault(code, Component(code, pc.price, pc.vat, pc.step_size, i, self, flat_kind))
            comps.append(per_dim)
            (expires_first if r.reservation is ReservationRestrictionType.RESERVATION_EXPIRES else others).append(i)

            cond: list[str] = []
            # Reservation elements apply only to reservation periods (and the
            # RESERVATION_EXPIRES ones only once the reservation expired);
            # the others only outside the reservation.
            if r.reservation is ReservationRestrictionType.RESERVATION_EXPIRES:
                cond.append("res == 2")
            s = _seconds(r.start_time) if r.start_time is not None else None
            e = _seconds(r.end_time) if r.end_time is not None else None
            if e == 0:
                e = 86_400  # "To stop at end of the day use: 00:00."
            if s is not None and e is not None:
                if s < e:
                    cond.append(f"{s} <= sod < {e}")
                elif s > e:
                    cond.append(f"(sod >= {s} or sod < {e})")
                # s == e: the window is the whole day.
            elif s is not None:
                cond.append(f"sod >= {s}")
            elif e is not None and e < 86_400:
                cond.append(f"sod < {e}")
            for v in (s, e):
                if v is not None:
                    tod.add(v % 86_400)
            if r.start_date is not None:
                cond.append(f"day >= {r.start_date.toordinal() - _EPOCH_ORDINAL}")
                needs_midnight = True
            if r.end_date is not None:
                cond.append(f"day < {r.end_date.toordinal() - _EPOCH_ORDINAL}")
                needs_midnight = True
            if r.day_of_week is not None:
                bits = 0
                for d in r.day_of_week:
                    bits |= 1 << _DOW[d.value]
                cond.append(f"({bits} >> dow) & 1")
                needs_midnight = True
            if r.min_kwh is not None:
                cond.append(f"kwh >= {const(r.min_kwh)}")
                kwhs.add(r.min_kwh)
            if r.max_kwh is not None:
                cond.append(f"kwh < {const(r.max_kwh)}")
                kwhs.add(r.max_kwh)
            if r.min_current is not None:
                cond.append(f"(cmin is not None and cmin >= {const(r.min_current)})")
            if r.max_current is not None:
                cond.append(f"(cmax is not None and cmax < {const(r.max_current)})")
            if r.min_power is not None:
                cond.append(f"(pmin is not None and pmin >= {const(r.min_power)})")
            if r.max_power is not None:
                cond.append(f"(pmax is not None and pmax < {const(r.max_power)})")
            if r.min_duration is not None:
                cond.append(f"dur >= {r.min_duration * 1_000_000}")
                durs.add(r.min_duration * 1_000_000)
            if r.max_duration is not None:
                cond.append(f"dur < {r.max_duration * 1_000_000}")
                durs.add(r.max_duration * 1_000_000)
            test = (f"        if {' and '.join(cond)}:\n            m |= {1 << i}\n" if cond
                    else f"        m |= {1 << i}\n")
            (reservation_tests if r.reservation is not None else session_tests).append(test)

        self.components = tuple(comps)
        # An expired reservation is priced by its RESERVATION_EXPIRES elements first
        # (mod_tariffs: "the time based cost of an expired reservation will be
        # calculated based on the RESERVATION_EXPIRES TariffElement").
        self.order = tuple(expires_first + others)
        if needs_midnight:
            tod.add(0)
        self.tod_bounds = tuple(sorted(tod))
        self.needs_local = bool(self.tod_bounds)
        self.dur_bounds = tuple(sorted(d for d in durs if d > 0))
        self.kwh_bounds = tuple(sorted(k for k in kwhs if k > 0))
        # match() returns the chosen component per dimension (FLAT, ENERGY,
        # TIME, PARKING_TIME) for a period's context; mask() the matching
        # elements as bits.
        body = (
            "    m = 0\n"
            "    if res == 0:\n" + ("".join(session_tests) or "        pass\n") +
            "    else:\n" + ("".join(reservation_tests) or "        pass\n")
        )
        self.source = (
            "def mask(sod, day, dow, dur, kwh, cmin, cmax, pmin, pmax, res):\n" + body + "    return m\n"
            "\n"
            "def match(sod, day, dow, dur, kwh, cmin, cmax, pmin, pmax, res):\n" + body +
            "    return _choices.get(m) or _choose(m)\n"
        )
        namespace: dict[str, Any] = dict(consts)
        namespace["_choices"] = self._choices
        namespace["_choose"] = self.choice
        # Generated from the compiled restrictions only (numbers); values that
        # are not ints are passed by name, never formatted into the source.
        exec(compile(self.source, f"<tariff {self.id}>", "exec"), namespace)
        self.mask: Callable[..., int] = namespace["mask"]
        self.match: Callable[..., tuple[Any, Any, Any, Any]] = namespace["match"]

    def choice(self, mask: int) -> tuple[Any, Any, Any, Any]:
        """First matching component per dimension (FLAT, ENERGY, TIME, PARKING_TIME)."""
        got = self._choices.get(mask)
        if got is None:
            picked: list[Component | None] = [None, None, None, None]
            for i in self.order:
                if (mask >> i) & 1:
                    for code, comp in self.components[i].items():
                        if picked[code] is None:
                            picked[code] = comp
            got = self._choices[mask] = tuple(picked)  # type: ignore[assignment]
        return got

    def valid_at(self, t_us: int) -> bool:
        """Half-open validity [start_date_time, end_date_time)."""
        if self.valid_from_us is not None and t_us < self.valid_from_us:
            return False
        return not (self.valid_to_us is not None and t_us >= self.valid_to_us)


    def next_tod_bound(self, sod: int) -> int:
        i = bisect_right(self.tod_bounds, sod)
        if i < len(self.tod_bounds):
            return self.tod_bounds[i]
        return self.tod_bounds[0] + 86_400

    def __repr__(self) -> str:
        return f"CompiledTariff({self.id!r}, elements={len(self.components)})"


_CACHE: dict[bytes, CompiledTariff] = {}
_CACHE_MAX = 1024


def compile_tariff(tariff: Tariff | CompiledTariff, *, cache: bool = True) -> CompiledTariff:
    """Compile once; identical tariffs (by wire content) share one compiled form.

    Received CDRs each carry their own copy of the same tariff; generating
    the matcher again for every copy would cost more than pricing.
    """
    if isinstance(tariff, CompiledTariff):
        return tariff
    if not cache:
        return CompiledTariff(tariff)
    key = tariff.to_json_bytes()
    got = _CACHE.get(key)
    if got is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        got = _CACHE[key] = CompiledTariff(tariff)
    return got
