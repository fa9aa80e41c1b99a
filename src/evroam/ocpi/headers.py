"""HTTP headers of OCPI (transport_and_format.asciidoc)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from evroam.ocpi.types import CountryCode, PartyId, ci_key

AUTHORIZATION = "authorization"
REQUEST_ID = "x-request-id"
CORRELATION_ID = "x-correlation-id"
TO_PARTY_ID = "ocpi-to-party-id"
TO_COUNTRY_CODE = "ocpi-to-country-code"
FROM_PARTY_ID = "ocpi-from-party-id"
FROM_COUNTRY_CODE = "ocpi-from-country-code"
LINK = "link"
TOTAL_COUNT = "x-total-count"
LIMIT = "x-limit"
LOCATION = "location"

# Routing headers belong on functional modules only, never on these.
CONFIGURATION_MODULES = frozenset({"versions", "credentials", "hubclientinfo"})


@dataclass(slots=True)
class Routing:
    """OCPI-from/to headers; used on functional modules only."""

    from_country_code: str
    from_party_id: str
    to_country_code: str | None = None
    to_party_id: str | None = None

    def headers(self) -> dict[str, str]:
        h = {"OCPI-from-country-code": self.from_country_code, "OCPI-from-party-id": self.from_party_id}
        if self.to_country_code and self.to_party_id:
            h["OCPI-to-country-code"] = self.to_country_code
            h["OCPI-to-party-id"] = self.to_party_id
        return h


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """The routing headers of a request, checked: each pair as (CC, PID)
    upper-cased, or None when the pair is absent or incomplete."""

    from_key: tuple[str, str] | None = None
    to_key: tuple[str, str] | None = None


# The four headers, spelled as the spec does, with what each must hold.
_ROUTING_HEADERS = (
    (FROM_COUNTRY_CODE, "OCPI-from-country-code", TypeAdapter(CountryCode), "a country code (2 letters)"),
    (FROM_PARTY_ID, "OCPI-from-party-id", TypeAdapter(PartyId), "a party id (3 characters)"),
    (TO_COUNTRY_CODE, "OCPI-to-country-code", TypeAdapter(CountryCode), "a country code (2 letters)"),
    (TO_PARTY_ID, "OCPI-to-party-id", TypeAdapter(PartyId), "a party id (3 characters)"),
)


def parse_routing(headers: Mapping[str, str]) -> RoutingRequest:
    """The OCPI-from/to headers of a request. Raises ValueError naming a
    header whose value is no CiString(2) country code or CiString(3) party
    id: these values become database keys and the TO of our answers."""
    values = []
    for name, spelling, adapter, what in _ROUTING_HEADERS:
        value = headers.get(name) or None  # an empty header says nothing
        if value is not None:
            try:
                adapter.validate_python(value)
            except ValidationError:
                raise ValueError(f"{spelling}: {value[:40]!r} is not {what}") from None
        values.append(ci_key(value) if value else None)
    fcc, fpid, tcc, tpid = values
    return RoutingRequest((fcc, fpid) if fcc and fpid else None, (tcc, tpid) if tcc and tpid else None)


def new_id() -> str:
    return str(uuid.uuid4())


def encode_token(token: str) -> str:
    """The Authorization header value: `Token <base64(token)>` (2.2.1)."""
    return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")


def raw_token_header(token: str) -> str:
    """For partners still on the pre-2.2.1 habit of sending the token as is."""
    return "Token " + token


def parse_authorization(value: str | None) -> tuple[str | None, str | None]:
    """Split an Authorization header into (decoded, raw) token candidates.

    `decoded` is the Base64-decoded token when the value is valid Base64 of
    printable ASCII; `raw` is the value as sent. Which one is honoured depends on
    the partner's configuration, so both are returned.
    """
    if not value:
        return None, None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "token" or not rest.strip():
        return None, None
    raw = rest.strip()
    decoded: str | None = None
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
        if text and all(0x21 <= ord(c) <= 0x7E for c in text):
            decoded = text
    except (binascii.Error, ValueError, UnicodeDecodeError):
        decoded = None
    return decoded, raw
