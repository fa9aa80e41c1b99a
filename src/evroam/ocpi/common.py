"""Class types shared by several modules (types.asciidoc)."""

from __future__ import annotations

from enum import StrEnum

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.types import LanguageCode, Money, String


class DisplayText(OcpiModel):
    language: LanguageCode
    text: String(512)


class Price(OcpiModel):
    # Never negative here; a Credit CDR's negated totals are cdrs.CdrPrice.
    excl_vat: Money
    incl_vat: Money | None = None


class Role(StrEnum):
    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"
    # Not in the 2.2.1 Role enum: the Payments release (v2.3.0-payments) needs a
    # Payment Terminal Provider but never added it. evroam uses PTP for that role.
    PTP = "PTP"
