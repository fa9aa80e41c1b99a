"""Benchmark: CDRs priced per second.

A 4-element tariff with restrictions (time of day, day of week, power,
duration) and CDR-shaped sessions of 10 charging periods in
Europe/Amsterdam, spread over two months across a DST change. The periods
are already split where the tariff changes, as the CPO must emit them, so
the engine checks every boundary but splits nothing.

Prints priced/s, the rate of a baseline loop that only sums the same
periods' volumes, and their ratio, all measured in the same run; then, for
information, the rate including the Timeline built from a CDR model and the
rate of the full eMSP check. Runs in well under 30 s. Target: 20,000/s.

    .venv/bin/python bench/pricing.py [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from evroam.ocpi.cdrs import CdrLocation
from evroam.ocpi.tariffs import Tariff
from evroam.pricing import (
    PeriodKind,
    Timeline,
    TimelinePeriod,
    charging,
    check_cdr,
    compile_tariff,
    parking,
    price,
)
from evroam.pricing.builder import cdr_from_result
from evroam.pricing.result import from_us

ZONE = "Europe/Amsterdam"
PERIODS = 10
POOL = 400

TARIFF = Tariff.from_wire({
    "country_code": "NL", "party_id": "EVR", "id": "BENCH-4", "currency": "EUR", "type": "REGULAR",
    "last_updated": "2024-01-01T00:00:00Z",
    "min_price": {"excl_vat": 0.50, "incl_vat": 0.605},
    "max_price": {"excl_vat": 80.00, "incl_vat": 96.80},
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1}],
         "restrictions": {"start_time": "07:00", "end_time": "22:00",
                          "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                          "max_power": 22.0}},
        {"price_components": [{"type": "ENERGY", "price": 0.45, "vat": 21.0, "step_size": 1},
                              {"type": "TIME", "price": 1.20, "vat": 21.0, "step_size": 60}],
         "restrictions": {"min_power": 22.0}},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 21.0, "step_size": 300}],
         "restrictions": {"start_time": "09:00", "end_time": "18:00", "min_duration": 3600}},
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 1},
                              {"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1}]},
    ],
})
LOCATION = CdrLocation.from_wire({
    "id": "LOC1", "address": "Stationsplein 1", "city": "Utrecht", "country": "NLD",
    "coordinates": {"latitude": "52.089210", "longitude": "5.110150"}, "evse_uid": "E1", "evse_id": "NL*EVR*E1",
    "connector_id": "1", "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
    "connector_power_type": "AC_3_PHASE",
})


def _cdr_shaped(rng: random.Random, compiled) -> Timeline | None:
    """A random session, as the CPO reports it: split wherever the tariff changes."""
    start = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
    steps = []
    for _ in range(rng.randrange(5, 9)):
        kw = rng.choice([7.4, 11, 22, 50])
        minutes = rng.randrange(5, 40)
        steps.append(charging(minutes, Decimal(str(kw)) * minutes / 60, power=kw, current=Decimal(str(kw)) * 1000 / 690))
    steps += [parking(rng.randrange(5, 60)) for _ in range(rng.randrange(1, 3))]
    rows = price(compiled, Timeline.sequence(start, steps, time_zone=ZONE)).rows
    if len(rows) != PERIODS:
        return None
    periods = []
    for (s, e, kind, _qty, energy, cmin, cmax, pmin, pmax), _ct, _lines in rows:
        periods.append(TimelinePeriod(from_us(s), from_us(e), (PeriodKind.CHARGING, PeriodKind.PARKING)[kind],
                                      energy, cmin, cmax, pmin, pmax))
    return Timeline(tuple(periods), time_zone=ZONE)


def _pool(compiled) -> list[Timeline]:
    rng = random.Random(2211)
    out: list[Timeline] = []
    while len(out) < POOL:
        tl = _cdr_shaped(rng, compiled)
        if tl is not None:
            out.append(tl)
    return out


def baseline(tl: Timeline) -> tuple[Decimal, timedelta]:
    """Only sums the periods' volumes: the floor any pricing loop stands on."""
    energy = Decimal(0)
    time_ = timedelta(0)
    for p in tl.periods:
        energy += p.energy_kwh
        time_ += p.end - p.start
    return energy, time_


def _rates(fns: dict[str, object], items: list, seconds: float) -> dict[str, float]:
    """Items per second for each function: best of 5 interleaved rounds of ~seconds/5 each.

    Interleaving keeps the loops under the same conditions when the machine
    is shared; the best round is the least disturbed one.
    """
    passes: dict[str, int] = {}
    for name, fn in fns.items():
        t = time.perf_counter()
        for it in items:
            fn(it)  # type: ignore[operator]
        one = time.perf_counter() - t
        passes[name] = max(1, int(seconds / 5 / max(one, 1e-9)))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(5):
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(passes[name]):
                for it in items:
                    fn(it)  # type: ignore[operator]
            best[name] = min(best[name], (time.perf_counter() - t) / passes[name])
    return {name: len(items) / b for name, b in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="time per measured function (default 5)")
    args = ap.parse_args()

    compiled = compile_tariff(TARIFF)
    pool = _pool(compiled)
    results = [price(compiled, tl) for tl in pool]
    assert all(len(r.rows) == PERIODS for r in results)
    cdrs = [
        cdr_from_result(r, cdr_id=f"B{i}", country_code="NL", party_id="EVR",
                        cdr_token={"country_code": "NL", "party_id": "EMS", "uid": "U1", "type": "RFID",
                                   "contract_id": "NL-EMS-1"},
                        auth_method="WHITELIST", cdr_location=LOCATION)
        for i, r in enumerate(results[:100])
    ]

    def priced(tl: Timeline) -> object:
        return price(compiled, tl).totals

    rates = _rates({"priced": priced, "baseline": baseline}, pool, args.seconds)
    priced_rate, base_rate = rates["priced"], rates["baseline"]
    info = _rates({
        "from_cdr": lambda c: price(compiled, Timeline.from_cdr(c, time_zone=ZONE)).totals,
        "check": lambda c: check_cdr(c, time_zone=ZONE),
    }, cdrs, args.seconds / 2)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"evroam pricing benchmark - Python {platform.python_version()} on {platform.machine()}, one core, "
          f"{os.cpu_count()} CPUs, load average {load:.2f}")
    print(f"tariff: 4 elements with restrictions; CDRs of {PERIODS} periods; pool of {len(pool)} sessions")
    print(f"priced/s:                {priced_rate:12,.0f}   ({1e6 / priced_rate:6.1f} us per CDR)")
    print(f"baseline (sum volumes)/s:{base_rate:12,.0f}   ({1e6 / base_rate:6.1f} us per CDR)")
    print(f"ratio priced/baseline:   {priced_rate / base_rate:12.3f}   (pricing takes {base_rate / priced_rate:.1f}x "
          "the baseline's time)")
    print(f"target 20,000/s:         {'met' if priced_rate >= 20_000 else 'NOT met'}")
    print(f"[info] CDR model -> Timeline.from_cdr -> price: {info['from_cdr']:,.0f}/s; "
          f"check_cdr (eMSP, CDR model in): {info['check']:,.0f}/s")


if __name__ == "__main__":
    main()
