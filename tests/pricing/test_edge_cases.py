"""Edge cases: zero kWh, midnight, weekday and DST changes, tariff changes, free tariffs, tariff choice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evroam.ocpi.tariffs import TariffType
from evroam.ocpi.tokens import ProfileType
from evroam.pricing import (
    NoApplicableTariff,
    PricingPolicy,
    SessionContext,
    Timeline,
    TimelineError,
    TimelinePeriod,
    charging,
    parking,
    price,
    reservation,
)
from tests.pricing import fixtures as fx
from tests.pricing.fixtures import D, el, local, pc, tariff, utc

AMS = "Europe/Amsterdam"


def lines(result):
    return [(p.kind, ln.dimension, ln.volume, ln.price) for p in result.periods for ln in p.lines]


# --- zero kWh --------------------------------------------------------------------------------


def test_parking_only_session():
    r = price(fx.T10, Timeline.sequence(utc("2024-05-14T10:00:00"), [parking(40)]))
    # Connected, never charged: start fee + 45 billed minutes of parking.
    assert r.totals.total_cost == (D("2.00"), D("2.40"))
    assert r.totals.total_energy == D(0) and r.totals.total_time == r.totals.total_parking_time


def test_reservation_only_session_not_expired():
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(22)], reservation_expired=False)
    r = price(fx.T17, tl)
    # Cancelled in time: reservation time only (30 min billed), no expiry fee, no start fee.
    assert r.totals.total_cost == (D("1.00"), D("1.20"))
    assert r.totals.total_time == D(0) and r.totals.total_reservation_time == D("0.3667")


def test_zero_kwh_energy_tariff_is_free_but_flat_applies():
    r = price(fx.T9, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(30, 0)]))
    assert r.totals.total_cost == (D("0.50"), D("0.60"))


# --- midnight, weekday, DST ----------------------------------------------------------------------


def test_session_across_midnight():
    # tariff_14: 2.40/h 20:00-24:00, 1.20/h 00:00-17:00; 23:50 -> 00:20.
    tl = Timeline.sequence(local("2024-05-14T23:50:00"), [charging(30, 5)], time_zone=AMS)
    r = price(fx.T14, tl)
    assert [(ln.price, ln.billed_volume * 60) for p in r.periods for ln in p.lines] == [
        (D("2.4"), D(10)), (D("1.2"), D(20))]
    assert r.totals.total_cost.excl == D("0.80")


def test_session_across_a_weekday_change():
    t = tariff("wk", el(pc("TIME", 1.0), day_of_week=fx.WEEKDAYS), el(pc("TIME", 2.0)))
    # Friday 23:30 -> Saturday 00:30 local time.
    r = price(t, Timeline.sequence(local("2024-05-17T23:30:00"), [charging(60, 5)], time_zone=AMS))
    assert [ln.price for p in r.periods for ln in p.lines] == [D("1.0"), D("2.0")]
    assert r.totals.total_cost.excl == D("1.50")
    # The same instant judged in UTC is Friday 21:30-22:30: all weekday.
    assert price(t, Timeline.sequence(local("2024-05-17T23:30:00"), [charging(60, 5)], time_zone="UTC")) \
        .totals.total_cost.excl == D("1.00")


def test_dst_spring_forward():
    # 2024-03-31 in Amsterdam: 02:00 CET -> 03:00 CEST. Night energy 00:00-03:00 local.
    t = tariff("dst", el(pc("ENERGY", 0.30), start_time="00:00", end_time="03:00"), el(pc("ENERGY", 0.50)))
    start = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)  # 01:30 CET
    tl = Timeline.sequence(start, [charging(60, 10)], time_zone=AMS)  # one real hour, ends 03:30 CEST
    r = price(t, tl)
    # 30 real minutes before the jump at night price, 30 after at day price.
    assert [(ln.volume, ln.price) for p in r.periods for ln in p.lines] == [(D(5), D("0.3")), (D(5), D("0.5"))]
    assert r.totals.total_cost.excl == D("4.00")


def test_dst_fall_back():
    # 2024-10-27 in Amsterdam: 03:00 CEST -> 02:00 CET; 02:00-03:00 happens twice.
    t = tariff("dst", el(pc("TIME", 1.0), start_time="00:00", end_time="03:00"), el(pc("TIME", 2.0)))
    start = datetime(2024, 10, 26, 23, 30, tzinfo=UTC)  # 01:30 CEST
    tl = Timeline.sequence(start, [charging(180, 10)], time_zone=AMS)  # until 03:30 CET
    r = price(t, tl)
    # 2.5 real hours at night (01:30-03:00 CEST and 02:00-03:00 CET), 0.5 h by day.
    assert r.totals.total_cost.excl == D("2.5") + D("1.0")
    assert [p.start.strftime("%H:%M") for p in r.periods] == ["23:30", "01:00", "02:00"]


def test_dst_with_utc_zone_needs_no_split():
    t = tariff("dst", el(pc("ENERGY", 0.30), start_time="00:00", end_time="03:00"), el(pc("ENERGY", 0.50)))
    tl = Timeline.sequence(datetime(2024, 3, 31, 0, 30, tzinfo=UTC), [charging(60, 10)], time_zone="UTC")
    assert price(t, tl).totals.total_cost.excl == D("3.00")


# --- no element, free tariff -------------------------------------------------------------------


def test_tariff_with_no_element_for_a_dimension():
    # tariff_4 has no PARKING_TIME element for Sundays: Sunday parking is free.
    tl = Timeline.sequence(local("2024-05-19T12:00:00"), [charging(60, 20, current=16), parking(120)],
                           time_zone=AMS)
    r = price(fx.T4, tl)
    assert r.totals.total_parking_cost.excl == D(0)
    assert r.totals.total_time_cost.excl == D("1.00")
    assert r.periods[-1].lines == ()


def test_free_tariff():
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(10), charging(60, 20), parking(30)])
    r = price(fx.T5, tl)
    assert r.totals.total_cost == (D(0), D(0))
    assert r.totals.total_fixed_cost == (D(0), D(0))
    assert [ln.dimension for p in r.periods for ln in p.lines] == ["FLAT"]


# --- a tariff that ends mid-session --------------------------------------------------------------

SUCCESSOR = tariff("16b", el(pc("ENERGY", 0.30, 10.0)), start_date_time="2019-07-01T00:00:00Z")
ACROSS_END = Timeline.sequence(utc("2019-06-30T23:30:00"), [charging(60, 30)])


def test_tariff_valid_at_start_prices_the_whole_session_by_default():
    r = price([fx.T6, SUCCESSOR], ACROSS_END)
    assert [t.id for t in r.tariffs] == ["16"]
    assert r.totals.total_cost.excl == D("8.00")


def test_tariff_switch_mid_session_when_the_policy_allows():
    switching = PricingPolicy(switch_tariffs_mid_session=True)
    r = price([fx.T6, SUCCESSOR], ACROSS_END, policy=switching)
    assert [t.id for t in r.tariffs] == ["16", "16b"]
    # tariff 16 until 23:59:59 (its end, exclusive), nothing in the second before
    # 16b starts, then 16b. No step_size at the switch.
    assert [p.tariff_id for p in r.periods] == ["16", None, "16b"]
    e16 = (D(30) * 1799 / 3600).quantize(D("1e-9"))  # 23:30:00-23:59:59 of 30 kWh/h, interpolated to the µWh
    # The step (1 Wh, of the last component, 16b's) rounds the billable 29.99167 kWh to 29.992.
    extra = D("29.992") - (e16 + 15)
    expected = D("0.50") + e16 * D("0.25") + (15 + extra) * D("0.30")
    assert r.totals.total_cost.excl == expected.quantize(D("0.0001"))
    assert abs(r.periods[1].energy_kwh - D(30) / 3600) < D("1e-9")  # the free second


def test_single_tariff_ending_mid_session_with_switching_leaves_the_rest_unpriced():
    switching = PricingPolicy(switch_tariffs_mid_session=True)
    r = price(fx.T6, ACROSS_END, policy=switching)
    assert [p.tariff_id for p in r.periods] == ["16", None]


def test_explicit_tariff_outside_its_validity_is_used_with_a_warning():
    r = price(fx.T6, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10)]))
    assert r.totals.total_cost.excl == D("3.00")
    assert any("not valid" in w for w in r.warnings)


# --- tariff choice from the connector's tariffs ----------------------------------------------------

REGULAR = tariff("reg", el(pc("ENERGY", 0.30)), type="REGULAR")
CHEAP = tariff("cheap", el(pc("ENERGY", 0.20)), type="PROFILE_CHEAP")
ADHOC = tariff("adhoc", el(pc("ENERGY", 0.50)), type="AD_HOC_PAYMENT")
ANY = tariff("any", el(pc("ENERGY", 0.40)))
TL = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10)])


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (None, "reg"),
        (SessionContext(profile_type=ProfileType.REGULAR), "reg"),
        (SessionContext(profile_type=ProfileType.CHEAP), "cheap"),
        (SessionContext(profile_type=ProfileType.FAST), "reg"),  # no PROFILE_FAST tariff: REGULAR fallback
        (SessionContext(ad_hoc=True), "adhoc"),
        (SessionContext(tariff_type=TariffType.PROFILE_GREEN), "reg"),
    ],
)
def test_tariff_type_selection(context, expected):
    r = price([ADHOC, CHEAP, REGULAR], TL, context=context)
    assert [t.id for t in r.tariffs] == [expected]


def test_untyped_tariff_serves_every_session():
    assert price([CHEAP, ANY], TL).tariffs[0].id == "any"
    assert price([CHEAP, ANY], TL, context=SessionContext(profile_type=ProfileType.CHEAP)).tariffs[0].id == "cheap"


def test_no_applicable_tariff():
    strict = PricingPolicy(fallback_to_regular=False)
    with pytest.raises(NoApplicableTariff):
        price([CHEAP], TL, policy=strict)
    with pytest.raises(NoApplicableTariff):
        price([fx.T6], TL)  # ended in 2019


def test_preference_change_switches_tariff_without_step():
    ctx = SessionContext(profile_type=ProfileType.REGULAR,
                         profile_changes=((utc("2024-05-14T10:30:00"), ProfileType.CHEAP),))
    r = price([REGULAR, CHEAP], TL, context=ctx)
    assert [p.tariff_id for p in r.periods] == ["reg", "cheap"]
    assert r.totals.total_cost.excl == D("1.50") + D("1.00")


# --- input errors ---------------------------------------------------------------------------------


def test_naive_datetimes_refused():
    with pytest.raises(TimelineError, match="naive"):
        Timeline.sequence(datetime(2024, 5, 14, 10), [charging(10, 1)])


def test_overlapping_periods_refused():
    a = TimelinePeriod(utc("2024-05-14T10:00:00"), utc("2024-05-14T11:00:00"))
    b = TimelinePeriod(utc("2024-05-14T10:30:00"), utc("2024-05-14T11:30:00"))
    with pytest.raises(TimelineError, match="overlaps"):
        Timeline((a, b))


def test_reservation_after_charging_refused():
    with pytest.raises(TimelineError, match="reservation"):
        Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(10, 1), reservation(10)])


def test_unknown_time_zone():
    with pytest.raises(ValueError, match="time_zone"):
        price(fx.T1, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(10, 1)], time_zone="Mars/Olympus"))


def test_gaps_between_periods_are_not_priced():
    a = TimelinePeriod(utc("2024-05-14T10:00:00"), utc("2024-05-14T11:00:00"), energy_kwh=D(1))
    b = TimelinePeriod(utc("2024-05-14T12:00:00"), utc("2024-05-14T13:00:00"), energy_kwh=D(1))
    assert price(fx.T1, Timeline((a, b))).totals.total_cost.excl == D("4.00")
