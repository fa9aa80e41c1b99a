"""The session timeline: what the pricing engine prices.

A timeline is a list of periods in time order. Each period is one of
charging, parking (connected, not charging) or reservation (booked, not yet
in use), and carries the energy it delivered and the current and power the
restrictions are judged on. Build one by hand, from a Session, or from a
CDR's charging periods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evroam.ocpi.cdrs import CDR, ChargingPeriod
    from evroam.ocpi.sessions import Session

ZERO = Decimal(0)


class PeriodKind(StrEnum):
    CHARGING = "CHARGING"
    PARKING = "PARKING"
    RESERVATION = "RESERVATION"


class TimelineError(ValueError):
    """The timeline cannot be priced as given (overlaps, naive times, …)."""


@dataclass(frozen=True, slots=True)
class TimelinePeriod:
    start: datetime
    end: datetime
    kind: PeriodKind = PeriodKind.CHARGING
    energy_kwh: Decimal = ZERO
    # Sum over phases, A. min/max as reported for the period: a min_current
    # restriction holds when current_min reaches it, a max_current one when
    # current_max stays below it. One measured value sets both.
    current_min: Decimal | None = None
    current_max: Decimal | None = None
    # kW, same convention.
    power_min: Decimal | None = None
    power_max: Decimal | None = None
    # The time quantity priced, when it is not end - start (a CDR period whose
    # TIME volume is shorter than its span because the rest was idle and free).
    duration: timedelta | None = None
    # The tariff a received CDR says applied in this period.
    tariff_id: str | None = None

    @property
    def priced_duration(self) -> timedelta:
        return self.duration if self.duration is not None else self.end - self.start


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(value: datetime, what: str) -> int:
    """Microseconds since the epoch, exactly; refuses naive datetimes."""
    if value.tzinfo is None:
        raise TimelineError(f"{what}: a naive datetime is ambiguous; give it a time zone (UTC)")
    d = value - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


@dataclass(frozen=True, slots=True)
class Timeline:
    periods: tuple[TimelinePeriod, ...]
    # IANA zone of the Location; restrictions are judged in this local time.
    time_zone: str | None = None
    # None: an all-reservation timeline counts as an expired reservation.
    reservation_expired: bool | None = None
    currency: str | None = field(default=None, compare=False)
    # Derived once here, read by the pricing loop.
    _session_start: datetime | None = field(default=None, init=False, repr=False, compare=False)
    _has_session: bool = field(default=False, init=False, repr=False, compare=False)
    _session_start_us: int = field(default=0, init=False, repr=False, compare=False)
    # The periods as the pricing loop reads them: (start_us, end_us, kind 0/1/2
    # for charging/parking/reservation, priced µs, kWh, cmin, cmax, pmin, pmax).
    _raw: tuple[tuple[Any, ...], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        periods = tuple(self.periods)
        object.__setattr__(self, "periods", periods)
        if not periods:
            raise TimelineError("periods: a timeline needs at least one period")
        raw = []
        prev_end_dt = None
        prev_end = None
        seen_session = False
        for i, p in enumerate(periods):
            # Back-to-back periods share the datetime object: validate and convert it once.
            if p.start is prev_end_dt and prev_end is not None:
                start = prev_end
            else:
                start = _to_us(p.start, f"periods.{i}.start")
                if prev_end is not None and start < prev_end:
                    raise TimelineError(f"periods.{i}: overlaps the previous period")
            end = _to_us(p.end, f"periods.{i}.end")
            if end < start:
                raise TimelineError(f"periods.{i}: ends before it starts")
            kind = p.kind
            if kind is PeriodKind.RESERVATION:
                if seen_session:
                    raise TimelineError(f"periods.{i}: a reservation period after charging or parking")
                code = 2
            else:
                if not seen_session:
                    seen_session = True
                    object.__setattr__(self, "_session_start", p.start)
                    object.__setattr__(self, "_session_start_us", start)
                code = 0 if kind is PeriodKind.CHARGING else 1
            if p.duration is not None:
                if p.duration < timedelta(0):
                    raise TimelineError(f"periods.{i}.duration: negative")
                qty = (p.duration.days * 86_400 + p.duration.seconds) * 1_000_000 + p.duration.microseconds
            else:
                qty = end - start
            cmin, cmax, pmin, pmax = p.current_min, p.current_max, p.power_min, p.power_max
            if code:
                # Not charging: no current flows, whatever was (not) reported.
                cmin = ZERO if cmin is None else cmin
                cmax = ZERO if cmax is None else cmax
                pmin = ZERO if pmin is None else pmin
                pmax = ZERO if pmax is None else pmax
            raw.append((start, end, code, qty, p.energy_kwh, cmin, cmax, pmin, pmax))
            prev_end_dt = p.end
            prev_end = end
        object.__setattr__(self, "_has_session", seen_session)
        object.__setattr__(self, "_raw", tuple(raw))
        if not seen_session:
            object.__setattr__(self, "_session_start_us", raw[0][0])

    # --- derived ------------------------------------------------------------------

    @property
    def start(self) -> datetime:
        return self.periods[0].start

    @property
    def end(self) -> datetime:
        return self.periods[-1].end

    @property
    def session_start(self) -> datetime:
        """Start of the charging session proper (after any reservation)."""
        return self._session_start if self._session_start is not None else self.periods[0].start

    @property
    def has_session(self) -> bool:
        return self._has_session

    @property
    def is_expired_reservation(self) -> bool:
        if self.reservation_expired is not None:
            return self.reservation_expired
        return not self._has_session

    @property
    def total_energy(self) -> Decimal:
        return sum((p.energy_kwh for p in self.periods), ZERO)

    # --- builders -------------------------------------------------------------------

    @classmethod
    def sequence(
        cls,
        start: datetime,
        steps: Iterable[Step],
        *,
        time_zone: str | None = None,
        reservation_expired: bool | None = None,
    ) -> Timeline:
        """Back-to-back periods from `start`: `Timeline.sequence(t0, [charging(30, kwh=5), parking(10)])`."""
        periods = []
        t = start
        for s in steps:
            end = t + s.length
            periods.append(
                TimelinePeriod(
                    start=t,
                    end=end,
                    kind=s.kind,
                    energy_kwh=s.energy_kwh,
                    current_min=s.current,
                    current_max=s.current,
                    power_min=s.power,
                    power_max=s.power,
                )
            )
            t = end
        return cls(tuple(periods), time_zone=time_zone, reservation_expired=reservation_expired)

    @classmethod
    def from_charging_periods(
        cls,
        charging_periods: Sequence[ChargingPeriod],
        end: datetime,
        *,
        time_zone: str | None = None,
        reservation_expired: bool | None = None,
    ) -> Timeline:
        """A timeline from OCPI ChargingPeriods (a CDR's or a Session's).

        Each period runs until the next one starts; the last until `end`.
        Its kind comes from its dimensions: RESERVATION_TIME makes a
        reservation period; TIME and PARKING_TIME give the charging and
        parking durations (a period with both is split, charging first);
        a period with neither is charging when it has energy, else parking.
        """
        from evroam.ocpi.cdrs import CdrDimensionType as D

        out: list[TimelinePeriod] = []
        cps = sorted(charging_periods, key=lambda cp: cp.start_date_time)
        for i, cp in enumerate(cps):
            p_start = cp.start_date_time
            p_end = cps[i + 1].start_date_time if i + 1 < len(cps) else end
            vol: dict[D, Decimal] = {}
            for d in cp.dimensions:
                vol[d.type] = vol.get(d.type, ZERO) + d.volume
            energy = vol.get(D.ENERGY, vol.get(D.ENERGY_IMPORT, ZERO) - vol.get(D.ENERGY_EXPORT, ZERO))
            cur = vol.get(D.CURRENT)
            pw = vol.get(D.POWER)
            cmin = vol.get(D.MIN_CURRENT, cur if cur is not None else vol.get(D.MAX_CURRENT))
            cmax = vol.get(D.MAX_CURRENT, cur if cur is not None else vol.get(D.MIN_CURRENT))
            pmin = vol.get(D.MIN_POWER, pw if pw is not None else vol.get(D.MAX_POWER))
            pmax = vol.get(D.MAX_POWER, pw if pw is not None else vol.get(D.MIN_POWER))
            common = dict(current_min=cmin, current_max=cmax, power_min=pmin, power_max=pmax, tariff_id=cp.tariff_id)
            t_h = vol.get(D.TIME)
            park_h = vol.get(D.PARKING_TIME)
            res_h = vol.get(D.RESERVATION_TIME)
            if res_h is not None and res_h > 0:
                out.append(TimelinePeriod(p_start, p_end, PeriodKind.RESERVATION, ZERO,
                                          duration=hours_to_timedelta(res_h), **common))
            elif t_h is not None and t_h > 0 and park_h is not None and park_h > 0:
                split = min(p_start + hours_to_timedelta(t_h), p_end)
                out.append(TimelinePeriod(p_start, split, PeriodKind.CHARGING, energy,
                                          duration=hours_to_timedelta(t_h), **common))
                out.append(TimelinePeriod(split, p_end, PeriodKind.PARKING, ZERO,
                                          duration=hours_to_timedelta(park_h), **common))
            elif t_h is not None and t_h > 0:
                out.append(TimelinePeriod(p_start, p_end, PeriodKind.CHARGING, energy,
                                          duration=hours_to_timedelta(t_h), **common))
            elif park_h is not None and park_h > 0:
                out.append(TimelinePeriod(p_start, p_end, PeriodKind.PARKING, energy,
                                          duration=hours_to_timedelta(park_h), **common))
            else:
                kind = PeriodKind.CHARGING if energy != 0 else PeriodKind.PARKING
                out.append(TimelinePeriod(p_start, p_end, kind, energy, **common))
        return cls(tuple(out), time_zone=time_zone, reservation_expired=reservation_expired)

    @classmethod
    def from_cdr(cls, cdr: CDR, *, time_zone: str | None = None) -> Timeline:
        return cls.from_charging_periods(cdr.charging_periods, cdr.end_date_time, time_zone=time_zone)

    @classmethod
    def from_session(cls, session: Session, *, end: datetime | None = None, time_zone: str | None = None) -> Timeline:
        """A timeline from a Session's charging periods; an unfinished one ends at `end` or last_updated."""
        stop = end or session.end_date_time or session.last_updated
        if session.charging_periods:
            return cls.from_charging_periods(session.charging_periods, stop, time_zone=time_zone)
        # No periods: one period over the whole session, charging if energy flowed.
        kind = PeriodKind.CHARGING if session.kwh != 0 else PeriodKind.PARKING
        return cls((TimelinePeriod(session.start_date_time, stop, kind, session.kwh),), time_zone=time_zone)


def hours_to_timedelta(hours: Decimal) -> timedelta:
    """A reported volume in hours, to the nearest second.

    Hours with 4 decimals resolve 0.36 s, so 10 minutes arrive as 0.1667 h
    (600.12 s); without this a 600 s step_size would bill 1200 s.
    """
    return timedelta(seconds=int((hours * 3600).to_integral_value(ROUND_HALF_EVEN)))


# --- step helpers for Timeline.sequence ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    kind: PeriodKind
    length: timedelta
    energy_kwh: Decimal = ZERO
    current: Decimal | None = None
    power: Decimal | None = None


def _dec(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)  # type: ignore[arg-type]


def _len(minutes: float | Decimal | timedelta) -> timedelta:
    if isinstance(minutes, timedelta):
        return minutes
    return timedelta(microseconds=int(Decimal(str(minutes)) * 60_000_000))


def charging(minutes: float | Decimal | timedelta, kwh: object = 0, current: object = None, power: object = None) -> Step:
    return Step(PeriodKind.CHARGING, _len(minutes), _dec(kwh) or ZERO, _dec(current), _dec(power))


def parking(minutes: float | Decimal | timedelta) -> Step:
    return Step(PeriodKind.PARKING, _len(minutes), ZERO, Decimal(0), Decimal(0))


def reservation(minutes: float | Decimal | timedelta) -> Step:
    return Step(PeriodKind.RESERVATION, _len(minutes), ZERO, Decimal(0), Decimal(0))
