"""Payments module (mod_payments.asciidoc at tag v2.3.0-payments).

The only OCPI release that specifies Payments is 2.3.0-payments; evroam serves
the module next to its 2.2.1 modules, as the chapter's own example URLs do
(`/ocpi/ptp/2.2.1/payments/...`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import Price
from evroam.ocpi.locations import GeoLocation
from evroam.ocpi.types import URL, CiString, Country3, CountryCode, DateTime, PartyId

# FAC.currency is CiString(3) here, where 2.2.1 uses string(3): "eur" is valid.
CiCurrency = Annotated[str, StringConstraints(strict=True, min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")]


class InvoiceCreator(StrEnum):
    CPO = "CPO"
    PTP = "PTP"


class CaptureStatusCode(StrEnum):
    SUCCESS = "SUCCESS"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    FAILED = "FAILED"


class Terminal(OcpiModel):
    terminal_id: CiString(36)
    customer_reference: CiString(36) | None = None
    # party_id + country_code: the alternative to customer_reference.
    party_id: PartyId | None = None
    country_code: CountryCode | None = None
    # The spec types the address fields CiString, unlike Location's string:
    # street names with non-ASCII letters are refused here.
    address: CiString(45) | None = None
    city: CiString(45) | None = None
    postal_code: CiString(10) | None = None
    state: CiString(20) | None = None
    country: Country3 | None = None
    coordinates: GeoLocation | None = None
    invoice_base_url: URL | None = None
    invoice_creator: InvoiceCreator | None = None
    reference: CiString(36) | None = None  # the PTP's mapping, e.g. a serial number
    location_ids: list[CiString(36)] | None = None
    evse_uids: list[CiString(36)] | None = None
    last_updated: DateTime


class TerminalActivation(Terminal):
    """Body of POST {terminals}/activate: the PTP assigns terminal_id, so the CPO may leave it out."""

    terminal_id: CiString(36) | None = None


class FinancialAdviceConfirmation(OcpiModel):
    id: CiString(36)
    authorization_reference: CiString(36)  # as sent by the PTP in StartSession
    # The 2.2.1 Price {excl_vat, incl_vat}, not the {before_taxes, taxes} Price
    # that types.asciidoc defines at the v2.3.0-payments tag: the chapter's
    # URLs are 2.2.1 ones, all three FAC examples use excl_vat/incl_vat, and the
    # amount is matched against 2.2.1 Session and CDR totals.
    total_costs: Price
    currency: CiCurrency
    eft_data: list[CiString(255, min_length=1)] = Field(min_length=1)
    capture_status_code: CaptureStatusCode
    capture_status_message: CiString(255, min_length=1) | None = None
    last_updated: DateTime
