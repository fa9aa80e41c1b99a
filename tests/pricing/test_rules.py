"""The D1 rules one by one, on small hand-built tariffs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from evroam.pricing import (
    FlatMode,
    LimitWithoutInclVat,
    MissingVat,
    PricingPolicy,
    Timeline,
    TimelinePeriod,
    charging,
    parking,
    price,
    reservation,
)
from evroam.pricing.timeline import PeriodKind
from tests.pricing.fixtures import D, el, local, pc, tariff, utc

AMS = "Europe/Amsterdam"


def total(t, tl, **kw):
    return price(t, tl, **kw).totals.total_cost


def prices_used(result):
    return [(ln.dimension, ln.price) for p in result.periods for ln in p.lines]


# --- element choice ------------------------------------------------------------------------


def test_first_matching_element_per_dimension_in_list_order():
    t = tariff(
        "order",
        el(pc("ENERGY", 0.40), start_time="08:00", end_time="12:00"),
        el(pc("ENERGY", 0.30), pc("TIME", 1.0)),
        el(pc("ENERGY", 0.10), pc("TIME", 9.0)),  # never reached: the element above matches first
    )
    r = price(t, Timeline.sequence(local("2024-05-14T09:00:00"), [charging(60, 10)], time_zone=AMS))
    # ENERGY from element 0, TIME from element 1: dimensions may come from different elements.
    assert prices_used(r) == [("ENERGY", D("0.4")), ("TIME", D("1.0"))]
    assert r.totals.total_cost.excl == D("5.00")


def test_order_matters_fallback_last():
    restricted = el(pc("ENERGY", 0.50), min_power=22)
    fallback = el(pc("ENERGY", 0.20))
    tl = Timeline.sequence(utc("2024-05-14T09:00:00"), [charging(60, 10, power=50)])
    assert total(tariff("a", restricted, fallback), tl).excl == D("5.00")
    assert total(tariff("b", fallback, restricted), tl).excl == D("2.00")


def test_no_matching_element_means_free():
    t = tariff("evening", el(pc("TIME", 2.0), start_time="17:00", end_time="20:00"))
    r = price(t, Timeline.sequence(local("2024-05-14T10:00:00"), [charging(60, 10)], time_zone=AMS))
    assert r.totals.total_cost == (D(0), D(0))
    assert r.periods[0].lines == ()


def test_time_component_does_not_price_parking():
    t = tariff("t", el(pc("TIME", 2.0, 10.0)))
    r = price(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(30, 5), parking(90)]))
    assert r.totals.total_cost.excl == D("1.00")
    assert r.totals.total_parking_time == D("1.5")


# --- restrictions ------------------------------------------------------------------------------


def test_time_window_crossing_midnight():
    night = tariff("n", el(pc("ENERGY", 0.10), start_time="22:00", end_time="06:00"), el(pc("ENERGY", 0.30)))
    tl = Timeline.sequence(local("2024-05-14T21:00:00"), [charging(120, 12)], time_zone=AMS)
    # 21:00-22:00 day price, 22:00-23:00 night price; energy evenly spread.
    r = price(night, tl)
    assert prices_used(r) == [("ENERGY", D("0.3")), ("ENERGY", D("0.1"))]
    assert r.totals.total_cost.excl == D("2.40")
    tl = Timeline.sequence(local("2024-05-15T05:00:00"), [charging(120, 12)], time_zone=AMS)
    assert prices_used(price(night, tl)) == [("ENERGY", D("0.1")), ("ENERGY", D("0.3"))]


def test_end_time_0000_means_end_of_day():
    t = tariff("e", el(pc("TIME", 6.0), start_time="20:00", end_time="00:00"), el(pc("TIME", 1.0)))
    tl = Timeline.sequence(local("2024-05-14T23:30:00"), [charging(60, 5)], time_zone=AMS)
    r = price(t, tl)
    assert prices_used(r) == [("TIME", D("6.0")), ("TIME", D("1.0"))]
    assert r.totals.total_cost.excl == D("3.50")


def test_start_date_inclusive_end_date_exclusive():
    t = tariff("d", el(pc("ENERGY", 0.50), start_date="2024-05-14", end_date="2024-05-15"), el(pc("ENERGY", 0.20)))
    def on(day):
        return total(t, Timeline.sequence(local(f"{day}T10:00:00"), [charging(60, 10)], time_zone=AMS)).excl
    assert on("2024-05-13") == D("2.00")
    assert on("2024-05-14") == D("5.00")  # start_date: inclusive
    assert on("2024-05-15") == D("2.00")  # end_date: exclusive


def test_dates_are_local_dates():
    t = tariff("d", el(pc("ENERGY", 0.50), start_date="2024-05-14"), el(pc("ENERGY", 0.20)))
    # 23:30 UTC on the 13th is already the 14th in Amsterdam (UTC+2).
    tl = Timeline.sequence(utc("2024-05-13T23:30:00"), [charging(10, 1)], time_zone=AMS)
    assert total(t, tl).excl == D("0.50")
    assert total(t, Timeline.sequence(utc("2024-05-13T23:30:00"), [charging(10, 1)], time_zone="UTC")).excl == D("0.20")


def test_day_of_week():
    t = tariff("w", el(pc("TIME", 3.0), day_of_week=["SATURDAY", "SUNDAY"]), el(pc("TIME", 1.0)))
    sat = Timeline.sequence(local("2024-05-18T10:00:00"), [charging(60, 5)], time_zone=AMS)
    tue = Timeline.sequence(local("2024-05-14T10:00:00"), [charging(60, 5)], time_zone=AMS)
    assert (total(t, sat).excl, total(t, tue).excl) == (D("3.00"), D("1.00"))


@pytest.mark.parametrize(
    ("field", "value", "inside", "outside"),
    [
        ("min_current", 16, 16, D("15.9")),  # min inclusive
        ("max_current", 16, D("15.9"), 16),  # max exclusive
        ("min_power", 11, 11, D("10.9")),
        ("max_power", 11, D("10.9"), 11),
    ],
)
def test_current_and_power_bounds(field, value, inside, outside):
    t = tariff("cp", el(pc("ENERGY", 0.50), **{field: value}), el(pc("ENERGY", 0.20)))
    kw = "current" if "current" in field else "power"
    def cost(v):
        return total(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10, **{kw: v})])).excl
    assert cost(inside) == D("5.00")
    assert cost(outside) == D("2.00")


def test_current_is_judged_on_min_and_max_of_the_period():
    t = tariff("c", el(pc("TIME", 2.0), min_current=32), el(pc("TIME", 1.0), max_current=32))
    p = TimelinePeriod(utc("2024-05-14T10:00:00"), utc("2024-05-14T11:00:00"), PeriodKind.CHARGING, D(10),
                       current_min=D(20), current_max=D(40))
    # Neither holds over the whole period: it is neither >= 32 throughout nor < 32 throughout.
    assert total(t, Timeline((p,))).excl == D(0)
    # Unknown current: neither restriction can be shown to hold.
    unknown = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10)])
    assert total(t, unknown).excl == D(0)


def test_kwh_bounds_split_the_period():
    t = tariff("k", el(pc("ENERGY", 0.50), max_kwh=5), el(pc("ENERGY", 0.30), min_kwh=5, max_kwh=10),
               el(pc("ENERGY", 0.10)))
    r = price(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(120, 12)]))
    assert [(ln.volume, ln.price) for p in r.periods for ln in p.lines] == [
        (D(5), D("0.5")), (D(5), D("0.3")), (D(2), D("0.1"))]
    # The split instants are interpolated: 5 of 12 kWh after 50 of 120 minutes.
    assert [p.start.minute for p in r.periods] == [0, 50, 40]


def test_kwh_min_inclusive_max_exclusive_at_period_start():
    t = tariff("k", el(pc("TIME", 6.0), min_kwh=5), el(pc("TIME", 1.0)))
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 5), charging(60, 1)])
    r = price(t, tl)
    assert prices_used(r) == [("TIME", D("1.0")), ("TIME", D("6.0"))]  # exactly 5 kWh so far: min_kwh holds


def test_duration_counts_from_session_start():
    t = tariff("d", el(pc("TIME", 0.0), max_duration=1800), el(pc("TIME", 4.0), min_duration=1800))
    # The boundary at 30 min splits the single 60-minute period.
    r = price(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 5)]))
    assert [(ln.billed_volume, ln.price) for p in r.periods for ln in p.lines] == [
        (D("0.5"), D("0.0")), (D("0.5"), D("4.0"))]
    # Parking after 45 min of charging is already past the boundary.
    t2 = tariff("d2", el(pc("PARKING_TIME", 1.0), max_duration=3600), el(pc("PARKING_TIME", 5.0)))
    r2 = price(t2, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(45, 5), parking(30)]))
    assert r2.totals.total_parking_cost.excl == D("0.25") + D("1.25")


def test_duration_does_not_count_the_reservation():
    t = tariff("d", el(pc("TIME", 6.0), min_duration=600), el(pc("TIME", 1.0)))
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(30), charging(10, 1)])
    assert prices_used(price(t, tl)) == [("TIME", D("1.0"))]


def test_restrictions_and_together():
    t = tariff("and", el(pc("ENERGY", 0.50), start_time="08:00", end_time="18:00", min_power=22),
               el(pc("ENERGY", 0.20)))
    def cost(when, power):
        tl = Timeline.sequence(local(f"2024-05-14T{when}"), [charging(30, 10, power=power)], time_zone=AMS)
        return total(t, tl).excl
    assert cost("10:00:00", 50) == D("5.00")
    assert cost("10:00:00", 11) == D("2.00")
    assert cost("19:00:00", 50) == D("2.00")


# --- reservation -----------------------------------------------------------------------------


def test_reservation_elements_only_price_the_reservation():
    t = tariff("r", el(pc("TIME", 5.0), reservation="RESERVATION"), el(pc("TIME", 1.0)))
    r = price(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(60), charging(60, 5)]))
    assert r.totals.total_reservation_cost.excl == D("5.00")
    assert r.totals.total_time_cost.excl == D("1.00")
    # Without reservation elements, reservation time is free.
    free = tariff("nr", el(pc("TIME", 1.0)))
    assert price(free, Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(60), charging(60, 5)])) \
        .totals.total_cost.excl == D("1.00")


def test_expired_reservation_prefers_expires_element_whatever_the_order():
    t = tariff("x", el(pc("TIME", 3.0), reservation="RESERVATION"),
               el(pc("TIME", 6.0), reservation="RESERVATION_EXPIRES"))
    expired = Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(60)])
    assert total(t, expired).excl == D("6.00")
    cancelled = Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(60)], reservation_expired=False)
    assert total(t, cancelled).excl == D("3.00")


# --- FLAT ------------------------------------------------------------------------------------


def test_flat_once_per_session():
    t = tariff("f", el(pc("FLAT", 1.0), pc("ENERGY", 0.1)))
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(30, 5), charging(30, 5), parking(10)])
    assert total(t, tl).excl == D("2.00")


def test_flat_first_match_or_session_start():
    t = tariff("f", el(pc("FLAT", 5.0), min_duration=3600), el(pc("ENERGY", 0.1)))
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(90, 10)])
    assert total(t, tl).excl == D("6.00")  # the idle fee kicks in after an hour
    start_only = PricingPolicy(flat=FlatMode.SESSION_START)
    assert total(t, tl, policy=start_only).excl == D("1.00")


def test_flat_categories():
    t = tariff(
        "cats",
        el(pc("FLAT", 2.0), reservation="RESERVATION"),
        el(pc("FLAT", 1.0), pc("PARKING_TIME", 2.0)),
        el(pc("ENERGY", 0.1)),
    )
    r = price(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [reservation(10), charging(60, 10), parking(30)]))
    tot = r.totals
    assert tot.total_reservation_cost.excl == D("2.00")
    # A FLAT in an element that otherwise prices parking is a parking fee (not fixed).
    assert tot.total_parking_cost.excl == D("1.00") + D("1.00")
    assert tot.total_fixed_cost.excl == D(0)


# --- VAT and limits ----------------------------------------------------------------------------


def test_vat_per_component():
    t = tariff("v", el(pc("FLAT", 1.0, 21.0), pc("ENERGY", 0.2, 9.0), pc("TIME", 1.0)))
    tot = total(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10)]))
    assert tot == (D("4.00"), D("1.21") + D("2.18") + D("1.00"))


def test_missing_vat_is_not_zero_percent():
    t0 = tariff("zero", el(pc("ENERGY", 0.2, 0.0)))
    tn = tariff("none", el(pc("ENERGY", 0.2)))
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10)])
    # Same amount by default; the breakdown keeps them apart.
    assert total(t0, tl) == total(tn, tl) == (D("2.00"), D("2.00"))
    assert price(t0, tl).periods[0].lines[0].vat == D(0)
    assert price(tn, tl).periods[0].lines[0].vat is None
    strict = PricingPolicy(missing_vat=MissingVat.UNKNOWN)
    assert total(t0, tl, policy=strict).incl == D("2.00")
    assert total(tn, tl, policy=strict).incl is None


def test_min_and_max_price_apply_separately_to_excl_and_incl():
    # 0% VAT on energy, 100% on the flat fee: excl. and incl. cross the limits at different points.
    t = tariff("lim", el(pc("FLAT", 1.0, 100.0), pc("ENERGY", 1.0, 0.0)),
               min_price={"excl_vat": 3.0, "incl_vat": 4.5}, max_price={"excl_vat": 6.0, "incl_vat": 6.5})
    def cost(kwh):
        return total(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, kwh)]))
    assert cost(1) == (D("3.00"), D("4.50"))  # both raised
    assert cost(3) == (D("4.00"), D("5.00"))  # neither limit reached
    assert cost(5) == (D("6.00"), D("6.50"))  # excl. 6.00 exactly, incl. 7.00 capped
    assert cost("4.8") == (D("5.80"), D("6.50"))  # only incl. capped


def test_min_price_is_not_a_flat_fee():
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10)])
    t = tariff("m", el(pc("ENERGY", 0.25, 10.0)), min_price={"excl_vat": 0.5, "incl_vat": 0.55})
    assert total(t, tl) == (D("2.50"), D("2.75"))


def test_limit_without_incl_vat_scales_or_is_ignored():
    t = tariff("s", el(pc("ENERGY", 1.0, 20.0)), min_price={"excl_vat": 5.0})
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 1)])
    assert total(t, tl) == (D("5.00"), D("6.00"))
    ignore = PricingPolicy(limit_without_incl_vat=LimitWithoutInclVat.IGNORE)
    assert total(t, tl, policy=ignore) == (D("5.00"), D("1.20"))


def test_breakdown_subtotals_are_unclamped_and_the_adjustment_reported():
    t = tariff("cap", el(pc("FLAT", 1.0), pc("ENERGY", 1.0)), max_price={"excl_vat": 5.0, "incl_vat": 5.0})
    r = price(t, Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(60, 10)]))
    assert r.totals.total_cost.excl == D("5.00")
    assert (r.totals.total_fixed_cost.excl, r.totals.total_energy_cost.excl) == (D("1.00"), D("10.00"))
    assert r.limit_applied == "max_price" and r.exact_unclamped.excl == D(11)


# --- rounding policy -----------------------------------------------------------------------------


def test_rounding_is_configurable():
    t = tariff("r", el(pc("TIME", 1.0)))
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(D("0.45"), 1)])  # 27 s -> 0.0075
    assert total(t, tl).excl == D("0.0075")
    assert total(t, tl, policy=PricingPolicy(places=3)).excl == D("0.008")
    assert total(t, tl, policy=PricingPolicy(places=3, rounding="ROUND_HALF_EVEN")).excl == D("0.008")
    assert total(t, tl, policy=PricingPolicy(places=3, rounding="ROUND_DOWN")).excl == D("0.007")
    assert total(t, tl, policy=PricingPolicy(places=2)).excl == D("0.01")


def test_policy_validates():
    with pytest.raises(ValueError, match="rounding"):
        PricingPolicy(rounding="NEAREST")
    with pytest.raises(ValueError, match="places"):
        PricingPolicy(places=-1)


def test_zero_step_size_means_no_rounding():
    t = tariff("z", el(pc("TIME", 60.0, None, 0)))
    tl = Timeline.sequence(utc("2024-05-14T10:00:00"), [charging(timedelta(seconds=61), 1)])
    assert total(t, tl).excl == D("1.0166666666666667").quantize(D("0.0001"))
