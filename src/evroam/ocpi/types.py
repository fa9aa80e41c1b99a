"""OCPI 2.2.1 base types (types.asciidoc), as pydantic v2 annotated types.

Validation is strict on purpose: partners that send `"230"` for an int or
`"0.25"` for a number are told so (2001) instead of being silently coerced,
because the next party down the line may not be as lenient.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Annotated, Any

import annotated_types
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


class Bounds:
    """An inclusive range for a number, kept as data so that docs/limits.md and
    the property tests' strategies read the same bounds the models enforce."""

    __slots__ = ("lo", "hi", "unit")

    def __init__(self, lo: int | str, hi: int | str, unit: str = "") -> None:
        self.lo, self.hi, self.unit = Decimal(lo), Decimal(hi), unit

    def __call__(self, value: Decimal) -> Decimal:
        if not self.lo <= value <= self.hi:
            unit = f" {self.unit}" if self.unit else ""
            if self.lo == 0 and value < 0:
                raise ValueError(f"must not be negative (0 to {self.hi}{unit})")
            raise ValueError(f"must be between {self.lo} and {self.hi}{unit}, got {value}")
        return value

    def __repr__(self) -> str:
        return f"Bounds({self.lo}, {self.hi}, {self.unit!r})"


def Quantity(lo: int | str, hi: int | str, unit: str = "") -> Any:
    """A number between lo and hi (inclusive): what a charger can physically
    report, so that −1 V or 10^30 kWh is refused (2001) instead of stored."""
    bounds = Bounds(lo, hi, unit)
    return Annotated[
        Number,
        AfterValidator(bounds),
        WithJsonSchema({"type": "number", "minimum": float(bounds.lo), "maximum": float(bounds.hi)}),
    ]


def IntRange(lo: int, hi: int) -> Any:
    """A strict int between lo and hi (inclusive)."""
    return Annotated[StrictInt, annotated_types.Ge(lo), annotated_types.Le(hi)]


# The sane ranges (docs/limits.md). Each sits far above any real charger
# (MCS tops out near 1,250 V, 3,000 A and 3.75 MW) and far below what breaks
# arithmetic or storage downstream.
MAX_VOLTAGE_V = 5_000
MAX_CURRENT_A = 10_000
MAX_POWER_KW = 10_000
MAX_ENERGY_KWH = 100_000  # 10 MW for 10 hours
MAX_HOURS = 10_000  # a session, or a car parked, for over a year
MAX_SECONDS = MAX_HOURS * 3600
MAX_MONEY = 1_000_000_000  # any amount in any currency, IDR and KRW included
MAX_TIMEOUT_S = 86_400  # a command or profile answer promised within a day

Percentage = Quantity(0, 100, "%")
Money = Quantity(0, MAX_MONEY)
Energy = Quantity(0, MAX_ENERGY_KWH, "kWh")
Hours = Quantity(0, MAX_HOURS, "h")
Seconds = IntRange(0, MAX_SECONDS)
Timeout = IntRange(0, MAX_TIMEOUT_S)

# --- time zones ------------------------------------------------------------------


@cache
def iana_zones() -> frozenset[str]:
    """The zone names of the `tzdata` package (a dependency): the same list on
    every machine, where the system's zoneinfo folder may hold extras such as
    `localtime`. A zone newer than the package is refused until it is upgraded."""
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split()) - {"Factory"}


def _iana_zone(value: str) -> str:
    if value not in iana_zones():
        raise ValueError(f"{value!r} is not an IANA tz database zone name (e.g. Europe/Amsterdam)")
    return value


# One of IANA tzdata's TZ-values (mod_locations): "Europe/Oslo", never a path.
TimeZone = Annotated[str, StringConstraints(strict=True, max_length=255), AfterValidator(_iana_zone)]

# --- geo -------------------------------------------------------------------------

# The spec says string(10)/string(11) but its own pattern admits one more
# character ("-33.8688197"); the pattern is the stricter, intended rule.
Latitude = Annotated[str, StringConstraints(strict=True, pattern=r"^-?[0-9]{1,2}\.[0-9]{5,7}$")]
Longitude = Annotated[str, StringConstraints(strict=True, pattern=r"^-?[0-9]{1,3}\.[0-9]{5,7}$")]

NonEmptyList = Field(min_length=1)
