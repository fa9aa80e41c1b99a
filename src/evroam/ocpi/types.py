"""OCPI 2.2.1 base types (types.asciidoc), as pydantic v2 annotated types.

Validation is strict on purpose: partners that send `"230"` for an int or
`"0.25"` for a number are told so (2001) instead of being silently coerced,
because the next party down the line may not be as lenient.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

# --- strings -----------------------------------------------------------------

# string: printable UTF-8, no control characters (CR, LF, TAB …).
_STRING_RE = r"^[^\x00-\x1f\x7f]*$"
# CiString: printable ASCII only.
_CISTRING_RE = r"^[\x20-\x7e]*$"


def String(max_length: int | None = None, min_length: int | None = None) -> Any:
    return Annotated[
        str,
        StringConstraints(strict=True, max_length=max_length, min_length=min_length, pattern=_STRING_RE),
    ]


def CiString(max_length: int | None = None, min_length: int | None = None) -> Any:
    """Case-insensitive string. Stored as received; compare with `ci_key`."""
    return Annotated[
        str,
        StringConstraints(strict=True, max_length=max_length, min_length=min_length, pattern=_CISTRING_RE),
    ]


def ci_key(value: str) -> str:
    """The form under which a CiString is compared and indexed."""
    return value.upper()


URL = Annotated[str, StringConstraints(strict=True, max_length=255, pattern=r"^[\x21-\x7e]+$")]
CountryCode = Annotated[str, StringConstraints(strict=True, min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]
PartyId = Annotated[str, StringConstraints(strict=True, min_length=3, max_length=3, pattern=r"^[A-Za-z0-9]{3}$")]
# ISO 3166-1 alpha-3 for Location.country.
Country3 = Annotated[str, StringConstraints(strict=True, min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")]
Currency = Annotated[str, StringConstraints(strict=True, min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
LanguageCode = Annotated[str, StringConstraints(strict=True, min_length=2, max_length=2, pattern=r"^[a-z]{2}$")]
TimeOfDay = Annotated[str, StringConstraints(strict=True, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]

Bool = StrictBool
Int = StrictInt

# --- DateTime ------------------------------------------------------------------

_DT_RE = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})T(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<f>\d{1,9}))?(?P<z>Z)?$"
)


def parse_datetime(value: Any) -> datetime:
    """RFC 3339 in UTC: `Z` optional, fractions allowed, offsets refused."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.utcoffset() != UTC.utcoffset(None):
            raise ValueError("DateTime must be UTC")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError("DateTime must be a string")
    m = _DT_RE.match(value)
    if m is None:
        if re.search(r"[+-]\d{2}:?\d{2}$", value):
            raise ValueError(f"DateTime {value!r} has a UTC offset; OCPI allows only UTC (optionally with Z)")
        raise ValueError(f"DateTime {value!r} is not RFC 3339 (YYYY-MM-DDThh:mm:ss[.fff][Z])")
    frac = (m["f"] or "")[:6].ljust(6, "0")
    try:
        return datetime(
            int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]), int(frac), tzinfo=UTC
        )
    except ValueError as exc:
        raise ValueError(f"DateTime {value!r} is not a valid date/time: {exc}") from None


def format_datetime(value: datetime) -> str:
    """The one canonical form we emit: UTC, `Z`, shortest fraction (none when whole seconds)."""
    value = value.astimezone(UTC) if value.tzinfo else value
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def utcnow() -> datetime:
    """Now, to the millisecond, so what we emit stays within string(25)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


DateTime = Annotated[
    datetime,
    BeforeValidator(parse_datetime),
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 25}),
]


def _parse_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"date {value!r} must be YYYY-MM-DD")
    return date.fromisoformat(value)


Date = Annotated[
    date,
    BeforeValidator(_parse_date),
    PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date"}),
]

# --- number ----------------------------------------------------------------------


def _parse_number(value: Any) -> Decimal:
    # JSON numbers only: a quoted number or a bool is a partner bug worth reporting.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a JSON number")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    return Decimal(value)


def _emit_number(value: Decimal) -> int | float:
    # Emitted as a JSON number, never as a string; integral values without ".0".
    if value == value.to_integral_value():
        return int(value)
    return float(value)


Number = Annotated[
    Decimal,
    BeforeValidator(_parse_number),
    PlainSerializer(_emit_number, when_used="json"),
    WithJsonSchema({"type": "number"}),
]


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


NonNegativeNumber = Annotated[Number, AfterValidator(_non_negative)]

# --- geo -------------------------------------------------------------------------

# The spec says string(10)/string(11) but its own pattern admits one more
# character ("-33.8688197"); the pattern is the stricter, intended rule.
Latitude = Annotated[str, StringConstraints(strict=True, pattern=r"^-?[0-9]{1,2}\.[0-9]{5,7}$")]
Longitude = Annotated[str, StringConstraints(strict=True, pattern=r"^-?[0-9]{1,3}\.[0-9]{5,7}$")]

NonEmptyList = Field(min_length=1)
