"""The one rule of Session PATCHes that is not "fields replace": charging
periods are *appended* (mod_sessions.asciidoc, "PATCH method"). The Receiver
merges with `append_periods`; our own updates append the same way
(owner.py); the outbox never folds such a PATCH into another (APPENDED, via
the module description's `appended`), because each one carries periods the
receiver must add, not replace.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from evroam.ocpi.base import error_text
from evroam.ocpi.sessions import ChargingPeriod
from evroam.ocpi.status import OcpiError, StatusCode

APPENDED = ("charging_periods",)


def append_periods(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A Session PATCH: fields replace, but charging_periods are added to the
    stored ones; absent or empty, the stored periods stay (mod_sessions).

    A period equal to one already stored is not added twice: a PATCH retried
    after a lost response must not double the energy.
    """
    merged = {**current, **patch}
    old = current.get("charging_periods") or []
    new = patch.get("charging_periods") or []
    if not new:
        if old:
            merged["charging_periods"] = old
        else:
            merged.pop("charging_periods", None)
        return merged
    if not isinstance(new, list):
        return merged  # validation names the field
    known = []
    for p in old:
        try:
            known.append(ChargingPeriod.from_wire(p))
        except ValidationError:
            continue
    added = []
    for i, p in enumerate(new):
        try:
            period = ChargingPeriod.from_wire(p)
        except ValidationError as exc:
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            f"PATCH makes the object invalid: charging_periods.{i}: {error_text(exc)}") from None
        if period not in known:
            known.append(period)
            added.append(p)
    merged["charging_periods"] = old + added
    return merged
