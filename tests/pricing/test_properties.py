"""Properties of the engine, checked with hypothesis on generated tariffs and sessions.

Monotonicity is stated for what OCPI 2.2.1 actually guarantees. Its rules
allow a longer or bigger session to cost less in three ways, all by design:
the step_size extra is billed at the *last* component, which may be a
cheaper one once the session crosses into it; energy in one period can push
later periods past a kWh threshold into a cheaper element (also for TIME);
and spreading the same energy over more time moves it into other time
windows. So the monotonicity properties use step_size 1 on a tariff with an
unrestricted fallback element (every quantity is billable, so steps never
add anything), whole minutes and whole Wh, and grow the session at its end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from evroam.ocpi.tariffs import Tariff
from evroam.pricing import PricingPolicy, Timeline, TimelinePeriod, price
from evroam.pricing.timeline import PeriodKind

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe"]
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]

money = st.integers(0, 500).map(lambda c: c / 100)
vat = st.one_of(st.none(), st.sampled_from([0.0, 5.5, 10.0, 21.0]))
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def restrictions(with_kwh: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda s, e, dow, kmin, kmax, pmin, pmax, cmax, dmin, dmax: _drop_none({
            "start_time": s, "end_time": e, "day_of_week": dow, "min_kwh": kmin, "max_kwh": kmax,
            "min_power": pmin, "max_power": pmax, "max_current": cmax, "min_duration": dmin, "max_duration": dmax,
        }),
        st.one_of(st.none(), hhmm), st.one_of(st.none(), hhmm),
        st.one_of(st.none(), st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True)),
        st.none() if not with_kwh else st.one_of(st.none(), st.integers(1, 40).map(float)),
        st.none() if not with_kwh else st.one_of(st.none(), st.integers(1, 60).map(float)),
        st.one_of(st.none(), st.sampled_from([7.4, 11.0, 22.0, 50.0])),
        st.one_of(st.none(), st.sampled_from([11.0, 22.0, 50.0])),
        st.one_of(st.none(), st.sampled_from([16.0, 32.0, 63.0])),
        st.one_of(st.none(), st.sampled_from([0, 900, 1800, 3600])),
        st.one_of(st.none(), st.sampled_from([1800, 3600, 7200])),
    )


def component(dims: list[str], steps: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda t, p, v, s: _drop_none({"type": t, "price": p, "vat": v, "step_size": s}),
        st.sampled_from(dims), money, vat,
        st.sampled_from([0, 1, 60, 300, 900]) if steps else st.sampled_from([0, 1]),
    )


def tariffs(*, with_kwh: bool = True, steps: bool = False, limits: bool = False) -> st.SearchStrategy[Tariff]:
    dims = ["FLAT", "ENERGY", "TIME", "PARKING_TIME"]
    restricted = st.lists(
        st.builds(lambda pcs, r: {"price_components": pcs, "restrictions": r},
                  st.lists(component(dims, steps), min_size=1, max_size=3), restrictions(with_kwh)),
        max_size=3,
    )
    # The advised unrestricted fallback, last, with every time/energy dimension.
    fallback = st.builds(
        lambda pcs: {"price_components": pcs},
        st.tuples(component(["ENERGY"], steps), component(["TIME"], steps), component(["PARKING_TIME"], steps))
        .map(list),
    )
    price_limits = st.one_of(
        st.none(),
        st.builds(lambda lo, hi, r1, r2: (lo, lo + hi, r1, r2), st.integers(0, 800), st.integers(0, 4000),
                  st.sampled_from([None, 0, 10, 21]), st.sampled_from([None, 0, 10, 21])),
    ) if limits else st.none()

    def build(els, fb, lim):
        data: dict[str, Any] = {
            "country_code": "NL", "party_id": "EVR", "id": "gen", "currency": "EUR",
            "elements": [*els, fb], "last_updated": "2024-01-01T00:00:00Z",
        }
        if lim is not None:
            lo, hi, r1, r2 = lim
            data["min_price"] = _drop_none({"excl_vat": lo / 100, "incl_vat": None if r1 is None else
                                            round(lo * (100 + r1)) / 10000})
            data["max_price"] = _drop_none({"excl_vat": hi / 100, "incl_vat": None if r2 is None else
                                            round(hi * (100 + max(r2, r1 or 0))) / 10000})
        return Tariff.from_wire(data)

    return st.builds(build, restricted, fallback, price_limits)


def period_specs(max_size: int = 5) -> st.SearchStrategy[list[tuple[str, int, int, int]]]:
    # (kind, minutes, Wh, kW)
    one = st.one_of(
        st.builds(lambda m, wh, kw: ("C", m, wh, kw), st.integers(1, 150), st.integers(0, 30_000),
                  st.sampled_from([3, 7, 11, 22, 50, 150])),
        st.builds(lambda m: ("P", m, 0, 0), st.integers(1, 150)),
    )
    return st.lists(one, min_size=1, max_size=max_size)


starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC))


def timeline(start: datetime, specs, zone: str, reservation_min: int = 0) -> Timeline:
    periods = []
    t = start
    if reservation_min:
        periods.append(TimelinePeriod(t, t + timedelta(minutes=reservation_min), PeriodKind.RESERVATION))
        t += timedelta(minutes=reservation_min)
    for kind, minutes, wh, kw in specs:
        end = t + timedelta(minutes=minutes)
        k = PeriodKind.CHARGING if kind == "C" else PeriodKind.PARKING
        p = Decimal(kw)
        periods.append(TimelinePeriod(t, end, k, Decimal(wh) / 1000, current_min=p * 4, current_max=p * 4,
                                      power_min=p, power_max=p))
        t = end
    return Timeline(tuple(periods), time_zone=zone)


def cost(t, tl, policy=None):
    return price(t, tl, policy=policy or PricingPolicy()).exact_total


# --- monotonicity ---------------------------------------------------------------------------


@SETTINGS
@given(tariffs(), starts, period_specs(), period_specs(max_size=2), st.sampled_from(ZONES))
def test_cost_never_decreases_when_the_session_goes_on(t, start, specs, more, zone):
    before = cost(t, timeline(start, specs, zone))
    after = cost(t, timeline(start, specs + more, zone))
    assert after.excl >= before.excl
    assert after.incl >= before.incl


@SETTINGS
@given(tariffs(with_kwh=False), starts, period_specs(), st.data(), st.sampled_from(ZONES))
def test_cost_never_decreases_with_more_energy(t, start, specs, data, zone):
    charging = [i for i, s in enumerate(specs) if s[0] == "C"]
    assume(charging)
    i = data.draw(st.sampled_from(charging))
    extra = data.draw(st.integers(1, 20_000))
    grown = list(specs)
    kind, m, wh, kw = grown[i]
    grown[i] = (kind, m, wh + extra, kw)
    before = cost(t, timeline(start, specs, zone))
    after = cost(t, timeline(start, grown, zone))
    assert after.excl >= before.excl
    assert after.incl >= before.incl


@SETTINGS
@given(tariffs(), starts, period_specs(), st.integers(1, 120), st.sampled_from(ZONES))
def test_cost_never_decreases_when_the_last_period_lasts_longer(t, start, specs, minutes, zone):
    # At the same power, so the existing part of the period is unchanged.
    kind, m, wh, kw = specs[-1]
    longer = specs[:-1] + [(kind, m + minutes, wh * (m + minutes) // m if wh * (m + minutes) % m == 0 else wh, kw)]
    assume(longer[-1][2] * m == wh * (m + minutes))
    before = cost(t, timeline(start, specs, zone))
    after = cost(t, timeline(start, longer, zone))
    assert after.excl >= before.excl
    assert after.incl >= before.incl


# --- limits and VAT ---------------------------------------------------------------------------


@SETTINGS
@given(tariffs(steps=True, limits=True), starts, period_specs(), st.integers(0, 30), st.sampled_from(ZONES))
def test_min_max_clamp_and_incl_not_below_excl(t, start, specs, res, zone):
    result = price(t, timeline(start, specs, zone, res))
    total = result.exact_total
    lo, hi = t.min_price, t.max_price
    if lo is not None:
        assert total.excl >= lo.excl_vat
        if lo.incl_vat is not None:
            assert total.incl >= lo.incl_vat
    if hi is not None:
        assert total.excl <= hi.excl_vat
        if hi.incl_vat is not None:
            assert total.incl <= hi.incl_vat
    # VAT rates are never negative: incl. VAT is never below excl. VAT, exact and rounded.
    assert total.incl >= total.excl
    assert result.totals.total_cost.incl >= result.totals.total_cost.excl
    for m in result.totals.cost_fields().values():
        assert m.incl >= m.excl


# --- splitting ----------------------------------------------------------------------------------


def _energy_prices(t: Tariff) -> list[Decimal]:
    return [c.price for e in t.elements for c in e.price_components if c.type.value == "ENERGY"]


def _vat_rates(t: Tariff) -> list[Decimal]:
    return [Decimal(str(c.vat)) for e in t.elements for c in e.price_components if c.vat is not None]


@SETTINGS
@given(tariffs(steps=True, limits=True), starts, period_specs(), st.data(), st.sampled_from(ZONES))
def test_splitting_a_period_does_not_change_the_total(t, start, specs, data, zone):
    tl = timeline(start, specs, zone)
    i = data.draw(st.integers(0, len(tl.periods) - 1))
    p = tl.periods[i]
    span = int((p.end - p.start).total_seconds())
    assume(span >= 2)
    cut_s = data.draw(st.integers(1, span - 1))
    cut = p.start + timedelta(seconds=cut_s)
    head_e = (p.energy_kwh * cut_s / span).quantize(Decimal("0.000001"))  # as a meter reports it
    head = TimelinePeriod(p.start, cut, p.kind, head_e, p.current_min, p.current_max, p.power_min, p.power_max)
    tail = TimelinePeriod(cut, p.end, p.kind, p.energy_kwh - head_e, p.current_min, p.current_max, p.power_min,
                          p.power_max)
    split = Timeline(tl.periods[:i] + (head, tail) + tl.periods[i + 1:], time_zone=zone)
    a = price(t, tl)
    b = price(t, split)
    # The head's energy is rounded to 1e-6 kWh as a meter reports it, so up to
    # half of that moves across any boundary the engine cuts inside the
    # period (a max_duration, a time of day) and may be charged at another
    # element's price: the totals agree to within that energy at the highest
    # energy price, far below a cent.
    tol_excl = Decimal("1e-6") * max([Decimal(1), *_energy_prices(t)])
    tol_incl = tol_excl * (1 + max([Decimal(0), *_vat_rates(t)]) / 100)
    assert abs(a.exact_total.excl - b.exact_total.excl) < tol_excl
    assert abs(a.exact_total.incl - b.exact_total.incl) < tol_incl
    assert abs(a.totals.total_cost.excl - b.totals.total_cost.excl) <= Decimal("0.0001")


# --- builder and checker agree ---------------------------------------------------------------


@SETTINGS
@given(tariffs(steps=True, limits=True), starts, period_specs(), st.integers(0, 30), st.sampled_from(ZONES))
def test_a_built_cdr_passes_the_check(t, start, specs, res, zone):
    from evroam.ocpi.cdrs import CDR, CdrLocation
    from evroam.pricing.builder import cdr_from_result
    from evroam.pricing import check_cdr

    result = price(t, timeline(start, specs, zone, res))
    location = CdrLocation.from_wire({
        "id": "L", "address": "a", "city": "c", "country": "NLD",
        "coordinates": {"latitude": "52.000000", "longitude": "5.000000"}, "evse_uid": "E", "evse_id": "E",
        "connector_id": "1", "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
        "connector_power_type": "AC_3_PHASE",
    })
    token = {"country_code": "NL", "party_id": "EMS", "uid": "U", "type": "RFID", "contract_id": "C"}
    cdr = cdr_from_result(result, cdr_id="C1", country_code="NL", party_id="EVR", cdr_token=token,
                          auth_method="WHITELIST", cdr_location=location)
    received = CDR.from_wire(cdr.to_json_bytes())
    report = check_cdr(received, time_zone=zone, tolerance=Decimal("0.01"))
    assert report.ok, report.summary()
    assert not report.inconsistencies, report.summary()
