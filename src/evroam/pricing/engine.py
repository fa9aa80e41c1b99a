"""price(): a session timeline and its tariff(s) in, costs per period and CDR totals out.

The rules (OCPI 2.2.1 mod_tariffs and mod_cdrs, digest section D1):

- Per period and per dimension, the first element (in list order) whose
  restrictions all hold and that has a component of that dimension prices
  it; no such element means the dimension is free in that period.
- Restrictions are judged at the start of each period, in the Location's
  local time. Periods are first split wherever an outcome can change (see
  PricingPolicy.split_at_boundaries), so judging at the start is exact.
- FLAT is charged once per session (and once per reservation).
- step_size rounds the session total, once for ENERGY and once for time,
  with the step of the last component used; the extra is billed at that
  component's price. No rounding at element or tariff switches.
- VAT per component; min_price/max_price clamp the excl. and incl. VAT
  totals separately.

Everything is Decimal; time is integer microseconds; amounts are rounded only
when reported.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import tzinfo
from decimal import ROUND_CEILING, ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any

from evroam.ocpi.tariffs import Tariff
from evroam.pricing.compiled import ENERGY, PARKING, TIME, CompiledTariff
from evroam.pricing.localtime import OffsetCache, offsets_for, zone
from evroam.pricing.policy import (
    DEFAULT_POLICY,
    FlatMode,
    LimitWithoutInclVat,
    MissingVat,
    PricingPolicy,
    StepBasis,
    TimeStepMode,
)
from evroam.pricing.result import CAT_RESERVATION, CdrTotals, Money, PricingResult
from evroam.pricing.select import NEG_INF, POS_INF, Segment, SessionContext, schedule
from evroam.pricing.timeline import Timeline

ZERO = Decimal(0)
_H = Decimal(3_600_000_000)
_ONE = Decimal(1)
_UWH = Decimal("1e-9")  # kWh: one µWh
_E9 = Decimal("1e9")
_US = 1_000_000
CHARGING_K, PARKING_K, RESERVATION_K = 0, 1, 2
# Enum members bound once: looking one up on its class costs more than the test.
_FIRST_MATCH, _VAT_UNKNOWN, _BILLABLE = FlatMode.FIRST_MATCH, MissingVat.UNKNOWN, StepBasis.BILLABLE
_COMBINED, _SCALE = TimeStepMode.COMBINED, LimitWithoutInclVat.SCALE


def price(
    tariffs: Tariff | CompiledTariff | Sequence[Tariff | CompiledTariff],
    timeline: Timeline,
    *,
    context: SessionContext | None = None,
    policy: PricingPolicy = DEFAULT_POLICY,
    time_zone: str | tzinfo | None = None,
    segments: list[Segment] | None = None,
) -> PricingResult:
    """Price a session.

    `tariffs`: one tariff (used for the whole session, whatever its type and
    validity), or a connector's tariffs, from which `context` and the session
    start choose. `time_zone` overrides `timeline.time_zone` (default UTC).
    `segments` (advanced): an explicit tariff schedule, as made by
    `evroam.pricing.select.schedule`.
    """
    tz_name = time_zone if time_zone is not None else timeline.time_zone
    offsets = _OFFSETS.get(tz_name) if type(tz_name) is str or tz_name is None else None
    if offsets is None:
        offsets = offsets_for(zone(tz_name))
        if type(tz_name) is str or tz_name is None:
            if len(_OFFSETS) > 1000:
                _OFFSETS.clear()
            _OFFSETS[tz_name] = offsets
    warnings: list[str] = []
    start_us = timeline._raw[0][0]
    if segments is None and type(tariffs) is CompiledTariff and not policy.switch_tariffs_mid_session:
        # The common case, kept cheap: one compiled tariff for the whole session.
        segments = [(NEG_INF, POS_INF, tariffs)]
        if tariffs.valid_from_us is not None or tariffs.valid_to_us is not None:
            if not tariffs.valid_at(start_us):
                warnings.append(f"tariff {tariffs.id} is not valid at the session start; priced with it anyway")
    elif segments is None:
        end_us = timeline._raw[-1][1]
        if isinstance(tariffs, Tariff | CompiledTariff):
            segments = schedule([tariffs], start_us, end_us, context, policy, explicit=True)
            only = segments[0][2]
            if only is not None and not only.valid_at(start_us):
                warnings.append(f"tariff {only.id} is not valid at the session start; priced with it anyway")
        else:
            segments = schedule(list(tariffs), start_us, end_us, context, policy)
    return _run(segments, timeline, offsets, policy, warnings, str(tz_name or "UTC"))


_OFFSETS: dict[str | None, OffsetCache] = {}


def _vat_ratio(other_ex: Decimal | None, other_in: Decimal | None, sum_ex: Decimal, sum_in: Decimal | None) -> Decimal:
    """incl/excl VAT ratio to scale a price limit that has no incl_vat.

    The tariff's other limit says it best when it has both amounts; else the
    session's own amounts; else (nothing charged, nothing known) 1.
    """
    if other_ex is not None and other_in is not None and other_ex > 0:
        return other_in / other_ex
    if sum_in is None or sum_ex <= 0:
        return _ONE
    return sum_in / sum_ex


def _hours(us: int, places: int, rounding: str, quantum: Decimal) -> Decimal:
    """µs as hours rounded to `places` (`quantum` is 10**-places), by integer arithmetic (no Decimal division)."""
    if not us:
        return _ZERO_HOURS[places]
    q, r = divmod(us * _POW10[places], 3_600_000_000)
    if r:
        twice = 2 * r
        if rounding == ROUND_HALF_UP:
            q += twice >= 3_600_000_000
        elif rounding == ROUND_HALF_EVEN:
            q += twice > 3_600_000_000 or (twice == 3_600_000_000 and q & 1)
        elif rounding == ROUND_HALF_DOWN:
            q += twice > 3_600_000_000
        elif rounding in (ROUND_UP, ROUND_CEILING):
            q += 1
    # Exact (q has far fewer than 28 digits): the same Decimal as
    # Decimal(q).scaleb(-places), for a third of the cost.
    return Decimal(q) * quantum


_POW10 = [10**k for k in range(13)]
# Common (no reservation, no parking): the same Decimal, built once.
_ZERO_HOURS = [Decimal(0).scaleb(-k) for k in range(13)]


def _run(
    segments: list[Segment],
    timeline: Timeline,
    offsets: OffsetCache,
    policy: PricingPolicy,
    warnings: list[str],
    tz_name: str,
) -> PricingResult:
    # The hot loops (_pieces, _match_pieces): locals only; no pydantic, no
    # datetime after conversion, no zoneinfo call (cached offsets), no Decimal
    # product per period. Quantities are summed per price component and priced
    # once at the end (cost is linear in quantity); PricingResult.periods
    # prices each line on demand.
    pieces, used, cum_kwh = _pieces(segments, timeline, offsets, policy.split_at_boundaries)
    rows, acc, last_lines, times = _match_pieces(
        pieces, policy.flat is _FIRST_MATCH, 2 if timeline.is_expired_reservation else 1)
    _apply_step_size(policy, acc, last_lines, cum_kwh, times)
    ex, inc, unknown_cats = _cost_by_category(acc, policy.missing_vat is _VAT_UNKNOWN)
    sum_ex = ex[0] + ex[1] + ex[2] + ex[3] + ex[4]
    sum_in = None if unknown_cats else inc[0] + inc[1] + inc[2] + inc[3] + inc[4]
    # min_price/max_price are the first tariff's: the one the session started under.
    first_ct = used[0] if used else next((s[2] for s in segments if s[2] is not None), None)
    tot_ex, tot_in, limit_applied = _apply_price_limits(first_ct, policy, sum_ex, sum_in)
    totals = _cdr_totals(policy, ex, inc, unknown_cats, tot_ex, tot_in, cum_kwh, times)
    currency = first_ct.currency if first_ct is not None else (timeline.currency or "")
    if len(used) > 1:
        for other in used[1:]:
            if other.currency != currency:
                warnings.append(f"tariff {other.id} is in {other.currency}, not {currency}")
    return PricingResult(
        currency,
        tz_name,
        policy,
        (ex, inc, unknown_cats),
        (sum_ex, sum_in),
        (tot_ex, tot_in),
        limit_applied,
        totals,
        tuple(used),
        warnings,
        rows,
    )


# A piece: (period, tariff, sod, day, dow, dur, kWh before), where a period is a
# Timeline._raw row (start_us, end_us, kind, qty_us, kWh, cmin, cmax, pmin, pmax),
# sod/day/dow the local second of day, day number and weekday at its start (0
# when the tariff has no time-of-day restriction), dur the µs since the session
# (or reservation) start.
Piece = tuple[tuple[Any, ...], CompiledTariff | None, int, int, int, int, Decimal]


def _pieces(segments: list[Segment], timeline: Timeline, offsets: OffsetCache,
            split: bool) -> tuple[list[Piece], list[CompiledTariff], Decimal]:
    """The periods to price, cut wherever a restriction may change outcome.

    Restrictions are judged at the start of each piece; with `split`, a period
    is cut at the next time-of-day, UTC offset, duration, kWh or tariff
    boundary inside it. Also returns the tariffs used (in order) and the session's energy.
    """
    stable = offsets.stable
    off, off_until = 0, -1  # the UTC offset `off` holds until `off_until`
    periods = timeline._raw
    res_start, session_start = periods[0][0], timeline._session_start_us
    cum_kwh = ZERO  # energy so far in the session (min_kwh/max_kwh)
    # The next instant at which a restriction may change outcome (time of day,
    # UTC offset, duration threshold, tariff switch), cached while still ahead.
    nb_any = -1
    seg_i, seg_to, ct = 0, segments[0][1], segments[0][2]
    used = [] if ct is None else [ct]
    t_local, t_tod, t_dur, t_kwh = _bounds(ct)
    pieces: list[Piece] = []
    for cur in periods:
        while True:  # once per piece: again on the tail of a cut period
            start, end, kind, _q, energy, _cmin, _cmax, _pmin, _pmax = cur
            if start >= seg_to and seg_i + 1 < len(segments):
                seg_i, seg_to, ct = _enter_segment(segments, seg_i, start, used)
                t_local, t_tod, t_dur, t_kwh = _bounds(ct)
                nb_any = -1
            if t_local:
                if start >= off_until:
                    off, off_until = stable(start)
                local_s = start // _US + off
                sod = local_s % 86_400
                day = local_s // 86_400
                dow = (day + 3) % 7
            else:
                local_s = sod = day = dow = 0
            if kind == RESERVATION_K:
                dur = start - res_start
                nb_any = -1  # duration base differs from the session's
            else:
                dur = start - session_start
            tail = None
            # Nothing to cut in a period that ends by the cached boundary (kWh
            # bounds aside): most periods, as the CPO already split them.
            if split and (end > nb_any or t_kwh) and end - start > 1:
                if start >= nb_any:
                    nb_any = _next_boundary(start, local_s, sod, off, off_until, dur, seg_to, t_local, t_tod, t_dur)
                cut = nb_any
                head_energy = None
                if t_kwh and kind == CHARGING_K and energy > 0:
                    cut, head_energy = _kwh_cut(t_kwh, cum_kwh, cur, cut)
                if cut < end:
                    cur, tail = _cut(cur, cut, head_energy)
                    energy = cur[4]
            pieces.append((cur, ct, sod, day, dow, dur, cum_kwh))
            if kind != RESERVATION_K and (ct is None or energy):
                cum_kwh += energy
            if tail is None:
                break
            cur = tail
    return pieces, used, cum_kwh


def _next_boundary(start: int, local_s: int, sod: int, off: int, off_until: int, dur: int, seg_to: int,
                   t_local: bool, t_tod: tuple[int, ...], t_dur: tuple[int, ...]) -> int:
    """The first instant after `start` at which a restriction may change outcome, at most `seg_to`."""
    nb = seg_to
    if t_local:
        j = bisect_right(t_tod, sod)
        b = t_tod[j] if j < len(t_tod) else t_tod[0] + 86_400
        b = (local_s - sod + b - off) * _US
        # A UTC offset change (DST) inside the period: split there too, so
        # each piece is judged in its own local time.
        if off_until < b:
            b = off_until
        if b < nb:
            nb = b
    if t_dur:
        j = bisect_right(t_dur, dur)
        if j < len(t_dur) and start - dur + t_dur[j] < nb:
            nb = start - dur + t_dur[j]
    return nb


def _enter_segment(segments: list[Segment], seg_i: int, start: int,
                   used: list[CompiledTariff]) -> tuple[int, int, CompiledTariff | None]:
    """The tariff segment `start` falls in (from `seg_i` on), its end and tariff; notes the tariff as used."""
    seg_to = segments[seg_i][1]
    while start >= seg_to and seg_i + 1 < len(segments):
        seg_i += 1
        seg_to = segments[seg_i][1]
    ct = segments[seg_i][2]
    if ct is not None and ct not in used:
        used.append(ct)
    return seg_i, seg_to, ct


def _bounds(ct: CompiledTariff | None) -> tuple[bool, tuple[int, ...], tuple[int, ...], tuple[Decimal, ...]]:
    """Where `ct`'s restrictions may change outcome: time of day (local), duration, kWh."""
    if ct is None:
        return False, (), (), ()
    return ct.needs_local, ct.tod_bounds, ct.dur_bounds, ct.kwh_bounds


def _kwh_cut(t_kwh: tuple[Decimal, ...], cum_kwh: Decimal, cur: tuple[Any, ...], cut: int) -> tuple[int, Decimal | None]:
    """`cut`, or earlier where the session's energy crosses a min_kwh/max_kwh bound, with the energy before it."""
    start, end, energy = cur[0], cur[1], cur[4]
    j = bisect_right(t_kwh, cum_kwh)
    if j < len(t_kwh) and t_kwh[j] < cum_kwh + energy:
        # Interpolated: the energy is assumed to flow evenly over the period.
        head_e = t_kwh[j] - cum_kwh
        # On a whole second (from the period start): CDR periods are
        # reported in whole seconds; the energy split stays exact.
        d = int((end - start) * head_e / energy)
        d -= d % _US
        t = start + d
        if t <= start:
            t = start + (_US if end - start > _US else 1)
        if t >= end:
            t = end - 1
        if t <= cut:
            return t, head_e
    return cut, None


def _cut(cur: tuple[Any, ...], cut: int, head_energy: Decimal | None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A period cut in two at `cut`: time in proportion, energy as given or in proportion."""
    start, end, kind, qty, energy, cmin, cmax, pmin, pmax = cur
    span = end - start
    d = cut - start
    q_head = qty * d // span
    # Interpolated to the µWh, so head + tail is exactly the period's energy.
    e_head = head_energy if head_energy is not None else ((energy * d / span).quantize(_UWH) if energy else energy)
    return ((start, cut, kind, q_head, e_head, cmin, cmax, pmin, pmax),
            (cut, end, kind, qty - q_head, energy - e_head, cmin, cmax, pmin, pmax))


def _match_pieces(
    pieces: list[Piece], flat_first_match: bool, res_code: int,
) -> tuple[list[tuple[Any, ...]], dict[Any, Any], tuple[list[Any] | None, ...], list[int]]:
    """Per piece and per dimension, the first element whose restrictions all hold prices it.

    Returns the rows (period, tariff, lines), a line being [component,
    volume, billed volume]; the quantity summed per component (kWh, µs or
    count); the last line of each step_size group (energy, time,
    reservation time); and the measured time per kind (charging, parking,
    reservation; µs).
    """
    acc: dict[Any, Any] = {}
    rows: list[tuple[Any, ...]] = []
    flat_done = res_flat_done = seen_session = seen_res = False
    last_energy: list[Any] | None = None
    last_time: list[Any] | None = None
    last_res: list[Any] | None = None
    times = [0, 0, 0]
    for cur, ct, sod, day, dow, dur, cum_kwh in pieces:
        _s, _e, kind, qty, energy, cmin, cmax, pmin, pmax = cur
        lines: list[list[Any]] = []
        rows.append((cur, ct, lines))
        times[kind] += qty
        if kind == RESERVATION_K:
            if ct is not None:
                res_flat_done, line = _match_reservation(
                    acc, lines, (cur, ct, sod, day, dow, dur, cum_kwh), res_code, flat_first_match, res_flat_done,
                    seen_res)
                if line is not None:
                    last_res = line
            seen_res = True
            continue
        if ct is None:
            seen_session = True
            continue
        f, ecomp, tcomp, pcomp = ct.match(sod, day, dow, dur, cum_kwh, cmin, cmax, pmin, pmax, 0)
        if not flat_done and (flat_first_match or not seen_session):
            flat_done = _charge_flat(acc, lines, f, flat_first_match)
        seen_session = True
        if energy and ecomp is not None:
            acc[ecomp] = acc.get(ecomp, ZERO) + energy
            last_energy = [ecomp, energy, energy]
            lines.append(last_energy)
        comp = tcomp if kind == CHARGING_K else pcomp
        if comp is not None and qty:
            acc[comp] = acc.get(comp, 0) + qty
            last_time = [comp, qty, qty]
            lines.append(last_time)
    return rows, acc, (last_energy, last_time, last_res), times


def _match_reservation(acc: dict[Any, Any], lines: list[list[Any]], piece: Piece, res_code: int,
                       flat_first_match: bool, flat_done: bool, seen: bool) -> tuple[bool, list[Any] | None]:
    """A reservation piece, priced by the elements that apply to reservations (FLAT and time).

    Returns whether the reservation's FLAT is done, and its time line, if any.
    """
    (_s, _e, _k, qty, _en, cmin, cmax, pmin, pmax), ct, sod, day, dow, dur, _kwh = piece
    f, _ecomp, tcomp, _pcomp = ct.match(sod, day, dow, dur, ZERO, cmin, cmax, pmin, pmax, res_code)
    if not flat_done and (flat_first_match or not seen):
        flat_done = _charge_flat(acc, lines, f, flat_first_match)
    if tcomp is None or not qty:
        return flat_done, None
    acc[tcomp] = acc.get(tcomp, 0) + qty
    line = [tcomp, qty, qty]
    lines.append(line)
    return flat_done, line


def _charge_flat(acc: dict[Any, Any], lines: list[list[Any]], f: Any, flat_first_match: bool) -> bool:
    """FLAT, once per session (and once per reservation); returns whether it is done."""
    if f is not None:
        acc[f] = acc.get(f, 0) + 1
        lines.append([f, 1, 1])
    return f is not None or not flat_first_match


def _apply_step_size(policy: PricingPolicy, acc: dict[Any, Any], last_lines: tuple[list[Any] | None, ...],
                     cum_kwh: Decimal, times: list[int]) -> None:
    """step_size, once per session: the last line of each group is billed up to a whole step.

    One group for energy, one for time (charging and parking apart, or
    together per policy.time_step), one for reservation time; the step is
    that of the last component used, the extra billed at its price.
    """
    last_energy, last_time, last_res = last_lines
    if last_energy is None and last_time is None and last_res is None:
        return
    if policy.step_basis is _BILLABLE:
        kwh, charging_t, parking_t, reservation_t = _priced_volumes(acc)
    else:
        kwh, (charging_t, parking_t, reservation_t) = cum_kwh, times
    if last_energy is not None:
        _round_energy_up(last_energy, acc, kwh)
    if last_time is not None:
        if policy.time_step is _COMBINED:
            total_t = charging_t + parking_t
        else:
            total_t = charging_t if last_time[0].dim == TIME else parking_t
        _round_time_up(last_time, acc, total_t)
    if last_res is not None:
        _round_time_up(last_res, acc, reservation_t)


def _priced_volumes(acc: dict[Any, Any]) -> tuple[Any, ...]:
    """What the components priced (FLAT excluded): kWh, charging, parking and reservation µs."""
    priced = [ZERO, 0, 0, 0, 0]
    for c, q in acc.items():
        dim = c.dim
        if dim:
            priced[4 if c.cat == CAT_RESERVATION else dim] += q
    return priced[ENERGY], priced[TIME], priced[PARKING], priced[4]


def _round_energy_up(line: list[Any], acc: dict[Any, Any], total: Decimal) -> None:
    # Representation noise (a sum of 28-digit parts) must not cost a whole step.
    total = total.quantize(_UWH)
    if total > ZERO:
        # In whole µWh (exact: `total` has exponent -9). The extra is built
        # with exponent -9, as (q + 1) * step / 1000 - total would be.
        step_uwh = line[0].step * 1_000_000
        r = int(total * _E9) % step_uwh
        if r:
            extra = Decimal(step_uwh - r) * _UWH
            line[2] += extra
            acc[line[0]] += extra


def _round_time_up(line: list[Any], acc: dict[Any, Any], total_t: int) -> None:
    comp = line[0]
    extra_t = -(-total_t // (comp.step * _US)) * comp.step * _US - total_t
    if extra_t > 0:
        line[2] += extra_t
        acc[comp] += extra_t


def _cost_by_category(acc: dict[Any, Any], unknown_policy: bool) -> tuple[list[Decimal], list[Decimal], int]:
    """Exact cost excl. and incl. VAT per category (fixed, energy, time, parking, reservation).

    The third value has a bit per category whose incl. VAT cannot be
    computed (a component without VAT under MissingVat.UNKNOWN).
    """
    ex = [ZERO, ZERO, ZERO, ZERO, ZERO]
    inc = [ZERO, ZERO, ZERO, ZERO, ZERO]
    unknown_cats = 0
    for comp, q in acc.items():
        c_ex = comp.price * q
        if comp.dim >= TIME:
            c_ex = c_ex / _H
        cat = comp.cat
        ex[cat] += c_ex
        factor = comp.factor
        if factor is not None:
            inc[cat] += c_ex * factor
        else:
            inc[cat] += c_ex
            if unknown_policy:
                unknown_cats |= 1 << cat
    return ex, inc, unknown_cats


def _apply_price_limits(ct: CompiledTariff | None, policy: PricingPolicy, sum_ex: Decimal,
                        sum_in: Decimal | None) -> tuple[Decimal, Decimal | None, str | None]:
    """min_price/max_price: the totals excl. and incl. VAT, each clamped on its own.

    Returns them with the limit that applied last ("min_price",
    "max_price" or None).
    """
    tot_ex, tot_in = sum_ex, sum_in
    limit_applied = None
    if ct is None or (ct.min_excl is None and ct.max_excl is None):
        return tot_ex, tot_in, limit_applied
    scale = policy.limit_without_incl_vat is _SCALE
    if ct.min_excl is not None:
        if tot_ex < ct.min_excl:
            tot_ex = ct.min_excl
            limit_applied = "min_price"
        lim = ct.min_incl
        if lim is None and scale:
            lim = ct.min_excl * _vat_ratio(ct.max_excl, ct.max_incl, sum_ex, sum_in)
        if tot_in is not None and lim is not None and tot_in < lim:
            tot_in = lim
            limit_applied = "min_price"
    if ct.max_excl is not None:
        if tot_ex > ct.max_excl:
            tot_ex = ct.max_excl
            limit_applied = "max_price"
        lim = ct.max_incl
        if lim is None and scale:
            lim = ct.max_excl * _vat_ratio(ct.min_excl, ct.min_incl, sum_ex, sum_in)
        if tot_in is not None and lim is not None and tot_in > lim:
            tot_in = lim
            limit_applied = "max_price"
    return tot_ex, tot_in, limit_applied


def _cdr_totals(policy: PricingPolicy, ex: list[Decimal], inc: list[Decimal], unknown_cats: int, tot_ex: Decimal,
                tot_in: Decimal | None, cum_kwh: Decimal, times: list[int]) -> CdrTotals:
    """The CDR totals, rounded per the policy (the only rounding of amounts)."""
    got = _POLICY_QUANTA.get(id(policy))
    if got is None or got[0] is not policy:
        got = _policy_quanta(policy)
    _p, rq, vq, zero = got
    rnd = policy.rounding
    rounded = [zero, zero, zero, zero, zero]
    for c in range(5):
        unknown = unknown_cats >> c & 1
        if ex[c] or inc[c] or unknown:
            rounded[c] = _money(Money, (ex[c].quantize(rq, rnd), None if unknown else inc[c].quantize(rq, rnd)))
    places = policy.volume_places
    t_charging, t_parking, t_reservation = times
    return _money(CdrTotals, (
        _money(Money, (tot_ex.quantize(rq, rnd), None if tot_in is None else tot_in.quantize(rq, rnd))),
        *rounded,
        cum_kwh.quantize(vq, rnd),
        _hours(t_charging + t_parking, places, rnd, vq),
        _hours(t_parking, places, rnd, vq),
        _hours(t_reservation, places, rnd, vq),
    ))


# Per policy (by identity: hashing a PricingPolicy costs more than what is
# cached): the amount quantum, the volume quantum, and a zero Money.
_POLICY_QUANTA: dict[int, tuple[PricingPolicy, Decimal, Decimal, Money]] = {}


def _policy_quanta(policy: PricingPolicy) -> tuple[PricingPolicy, Decimal, Decimal, Money]:
    rq = Decimal(1).scaleb(-policy.places)
    got = (policy, rq, Decimal(1).scaleb(-policy.volume_places), Money(ZERO.quantize(rq), ZERO.quantize(rq)))
    if len(_POLICY_QUANTA) > 100:
        _POLICY_QUANTA.clear()
    _POLICY_QUANTA[id(policy)] = got
    return got


_money = tuple.__new__


__all__ = ["price"]
