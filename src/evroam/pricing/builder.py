"""The CPO side: a complete, valid CDR from a priced session; Credit CDRs.

A CDR records the tariffs, location and token *as they were at the start* of
the session (mod_cdrs), so the caller passes the snapshots it kept; the
builder does not look anything up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from pydantic import ValidationError

from evroam.ocpi.base import error_text
from evroam.ocpi.cdrs import CDR, CDR_ID_MAX, CREDIT_CDR_ID_MAX, AuthMethod, CdrLocation, CdrToken, SignedData
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import utcnow
from evroam.pricing.compiled import CompiledTariff
from evroam.pricing.engine import price
from evroam.pricing.policy import DEFAULT_POLICY, PricingPolicy
from evroam.pricing.result import CAT_ENERGY, CAT_FIXED, CAT_PARKING, CAT_RESERVATION, CAT_TIME, Money, PricingResult, from_us
from evroam.pricing.select import SessionContext
from evroam.pricing.timeline import Timeline

_HOUR_US = Decimal(3_600_000_000)
_TOTAL_FIELDS = (
    (CAT_FIXED, "total_fixed_cost"),
    (CAT_ENERGY, "total_energy_cost"),
    (CAT_TIME, "total_time_cost"),
    (CAT_PARKING, "total_parking_cost"),
    (CAT_RESERVATION, "total_reservation_cost"),
)


class CdrBuildError(ValueError):
    """The inputs do not make a valid CDR; the message names the field."""


def _price(m: Money) -> dict[str, Any]:
    out: dict[str, Any] = {"excl_vat": m.excl}
    if m.incl is not None:
        out["incl_vat"] = m.incl
    return out


def _neg(p: dict[str, Any] | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {k: -v for k, v in p.items()}


def cdr_from_result(
    result: PricingResult,
    *,
    cdr_id: str,
    country_code: str,
    party_id: str,
    cdr_token: CdrToken,
    auth_method: AuthMethod,
    cdr_location: CdrLocation,
    session_id: str | None = None,
    authorization_reference: str | None = None,
    meter_id: str | None = None,
    signed_data: SignedData | None = None,
    remark: str | None = None,
    invoice_reference_id: str | None = None,
    home_charging_compensation: bool | None = None,
    last_updated: datetime | None = None,
) -> CDR:
    """The CDR for an already priced session."""
    if len(cdr_id) > CDR_ID_MAX:
        raise CdrBuildError(f"id: a CDR id is at most {CDR_ID_MAX} characters (39 is for Credit CDRs), got {len(cdr_id)}")
    policy = result.policy
    vq = Decimal(1).scaleb(-policy.volume_places)
    rnd = policy.rounding

    periods: list[dict[str, Any]] = []
    used_cats: set[int] = set()
    # Energy is reported by rounding the running total, so the receiver's
    # running total lands exactly where ours did at every period start (a
    # min_kwh/max_kwh threshold stays on the same side).
    cum = Decimal(0)
    reported_cum = Decimal(0)
    for row in result.rows:
        (start, end, kind, qty, energy, cmin, cmax, pmin, pmax), ct, lines = row
        for comp, _vol, _billed in lines:
            used_cats.add(comp.cat)
        if end <= start:
            # An empty instant would only repeat the next period's start; its
            # energy (if any) goes into the next reported running total.
            cum += energy
            continue
        hours = (Decimal(qty) / _HOUR_US).quantize(vq, rnd)
        dims: list[dict[str, Any]] = []
        if kind == 2:
            dims.append({"type": "RESERVATION_TIME", "volume": hours})
        else:
            cum += energy
            if kind == 0 or energy:
                rounded_cum = cum.quantize(vq, rnd)
                dims.append({"type": "ENERGY", "volume": rounded_cum - reported_cum})
                reported_cum = rounded_cum
            dims.append({"type": "TIME" if kind == 0 else "PARKING_TIME", "volume": hours})
            # The values the current/power restrictions were judged on, so the
            # receiver can verify which element applied. Rounded down: for a
            # threshold on the reported grid, x >= C and x < C keep their
            # outcome under floor, so the receiver picks the same element.
            if kind == 0:
                for typ, val in (("MIN_CURRENT", cmin), ("MAX_CURRENT", cmax), ("MIN_POWER", pmin), ("MAX_POWER", pmax)):
                    if val is not None:
                        dims.append({"type": typ, "volume": val.quantize(vq, ROUND_FLOOR)})
        period: dict[str, Any] = {"start_date_time": from_us(start), "dimensions": dims}
        if ct is not None:
            period["tariff_id"] = ct.id
        periods.append(period)
    if not periods:
        raise CdrBuildError("charging_periods: the session has no period to put in the CDR")

    t = result.totals
    money = dict(zip(("total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost",
                      "total_reservation_cost"),
                     (t.total_fixed_cost, t.total_energy_cost, t.total_time_cost, t.total_parking_cost,
                      t.total_reservation_cost), strict=True))
    first = result.rows[0][0][0]
    last = result.rows[-1][0][1]
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": cdr_id,
        "start_date_time": from_us(first),
        "end_date_time": from_us(last),
        "session_id": session_id,
        "cdr_token": cdr_token,
        "auth_method": auth_method,
        "authorization_reference": authorization_reference,
        "cdr_location": cdr_location,
        "meter_id": meter_id,
        "currency": result.currency,
        # Full Tariff objects, as they were when the session started.
        "tariffs": list(result.used_tariffs) or None,
        "charging_periods": periods,
        "signed_data": signed_data,
        "total_cost": _price(t.total_cost),
        "total_energy": t.total_energy,
        "total_time": t.total_time,
        "remark": remark,
        "invoice_reference_id": invoice_reference_id,
        "home_charging_compensation": home_charging_compensation,
        "last_updated": last_updated or utcnow(),
    }
    # A sub-total is reported when some component of that kind priced the session.
    for cat, name in _TOTAL_FIELDS:
        if cat in used_cats:
            data[name] = _price(money[name])
    if any(row[0][2] == 1 for row in result.rows):
        data["total_parking_time"] = t.total_parking_time
    data = {k: v for k, v in data.items() if v is not None}
    try:
        return CDR.model_validate(data)
    except ValidationError as exc:
        raise CdrBuildError(error_text(exc)) from None


def build_cdr(
    session: Session,
    tariffs: Tariff | CompiledTariff | Sequence[Tariff | CompiledTariff],
    cdr_location: CdrLocation,
    *,
    time_zone: str | None,
    cdr_id: str | None = None,
    timeline: Timeline | None = None,
    context: SessionContext | None = None,
    policy: PricingPolicy = DEFAULT_POLICY,
    signed_data: SignedData | None = None,
    remark: str | None = None,
    invoice_reference_id: str | None = None,
    home_charging_compensation: bool | None = None,
    last_updated: datetime | None = None,
) -> tuple[CDR, PricingResult]:
    """Price a finished Session and make its CDR.

    `tariffs`: the tariff that applied, or the connector's tariffs (then
    `context` chooses). `time_zone`: the Location's. `timeline` replaces the
    one derived from the Session's charging periods (for example one built
    from the charge point's meter values). The CDR id defaults to the
    session id.
    """
    if session.end_date_time is None:
        raise CdrBuildError("end_date_time: the session has not finished; a CDR needs its end")
    tl = timeline or Timeline.from_session(session, time_zone=time_zone)
    result = price(tariffs, tl, context=context, policy=policy, time_zone=time_zone)
    if result.currency and result.currency != session.currency:
        raise CdrBuildError(f"currency: the session is in {session.currency}, the tariff in {result.currency}")
    cdr = cdr_from_result(
        result,
        cdr_id=cdr_id or session.id,
        country_code=session.country_code,
        party_id=session.party_id,
        cdr_token=session.cdr_token,
        auth_method=session.auth_method,
        cdr_location=cdr_location,
        session_id=session.id,
        authorization_reference=session.authorization_reference,
        meter_id=session.meter_id,
        signed_data=signed_data,
        remark=remark,
        invoice_reference_id=invoice_reference_id,
        home_charging_compensation=home_charging_compensation,
        last_updated=last_updated,
    )
    return cdr, result


def credit_cdr(
    original: CDR,
    *,
    credit_id: str | None = None,
    last_updated: datetime | None = None,
    negate_breakdown: bool = False,
) -> CDR:
    """The Credit CDR that cancels `original`.

    mod_cdrs: a new id (default: the original + "-C"), credit=true,
    credit_reference_id = the original id, all data copied, and "only the
    values in the total_cost field SHALL contain the negative amounts". The
    sub-totals are therefore copied as they are, unless `negate_breakdown`
    (some receivers sum all cost fields and expect them negated too).
    """
    if original.credit:
        raise CdrBuildError(f"credit: CDR {original.id} is itself a Credit CDR; credit the original instead")
    new_id = credit_id or f"{original.id}-C"
    if len(new_id) > CREDIT_CDR_ID_MAX:
        raise CdrBuildError(f"id: a Credit CDR id is at most {CREDIT_CDR_ID_MAX} characters, got {len(new_id)}")
    if new_id.upper() == original.id.upper():
        raise CdrBuildError("id: a Credit CDR needs an id of its own")
    data = original.model_dump(exclude_none=True)
    data["id"] = new_id
    data["credit"] = True
    data["credit_reference_id"] = original.id
    data["total_cost"] = _neg(data["total_cost"])
    if negate_breakdown:
        for name in ("total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost",
                     "total_reservation_cost"):
            if name in data:
                data[name] = _neg(data[name])
    data["last_updated"] = last_updated or utcnow()
    try:
        return CDR.model_validate(data)
    except ValidationError as exc:
        raise CdrBuildError(error_text(exc)) from None
