"""HTTP headers of OCPI (transport_and_format.asciidoc)."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

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
