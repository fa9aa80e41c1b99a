"""Property tests: every object model survives wire → model → wire unchanged.

Strategies are derived from the models themselves (field annotations and
their constraints), so a field added to a model is covered without touching
this file. The few cross-field rules get a fix-up or a hand-written strategy.
"""

from __future__ import annotations

import json
import types as pytypes
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import StringConstraints

from evroam.ocpi import chargingprofiles, commands, hubclientinfo, locations, payments, tokens
from evroam.ocpi import types as ocpi_types
from evroam.ocpi.base import OcpiModel

MODULES = [locations, tokens, commands, chargingprofiles, hubclientinfo, payments]
MODELS = sorted(
    {
        obj
        for mod in MODULES
        for obj in vars(mod).values()
        if isinstance(obj, type) and issubclass(obj, OcpiModel) and obj.__module__ == mod.__name__
    },
    key=lambda cls: (cls.__module__, cls.__name__),
)

MAX_LIST = 3

# --- leaf strategies ---------------------------------------------------------------

# OCPI string: printable, no C0 controls or DEL; CiString: printable ASCII.
_STRING_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters=[chr(c) for c in range(0x20)] + ["\x7f"])
_CISTRING_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_URL_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
_CHARSETS = {
    ocpi_types._STRING_RE: _STRING_CHARS,
    ocpi_types._CISTRING_RE: _CISTRING_CHARS,
    r"^[\x21-\x7e]+$": _URL_CHARS,
}


def _string(c: StringConstraints) -> st.SearchStrategy[str]:
    lo = c.min_length or 0
    hi = c.max_length if c.max_length is not None else 300
    if c.pattern in _CHARSETS:
        lo = max(lo, 1) if c.pattern.endswith("+$") else lo
        return st.text(_CHARSETS[c.pattern], min_size=lo, max_size=hi)
    if c.pattern:
        return st.from_regex(c.pattern, fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
    return st.text(_STRING_CHARS, min_size=lo, max_size=hi)


@st.composite
def _datetime_text(draw: st.DrawFn) -> str:
    """The accepted spellings: with or without Z, with or without a fraction (up to ns)."""
    dt = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31)))
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if draw(st.booleans()):
        text += "." + draw(st.from_regex(r"[0-9]{1,9}", fullmatch=True))
    return text + draw(st.sampled_from(["Z", ""]))


def _date_text() -> st.SearchStrategy[str]:
    return st.dates(min_value=date(1970, 1, 1), max_value=date(2099, 12, 31)).map(date.isoformat)


def _number(bounds: ocpi_types.Bounds | None, one_decimal: bool) -> st.SearchStrategy[int | float]:
    """Numbers within the model's bounds (ocpi.types.Bounds), which every numeric field has."""
    lo, hi = (int(bounds.lo), int(bounds.hi)) if bounds is not None else (-(10**6), 10**9)
    if one_decimal:
        return st.integers(lo * 10, hi * 10).map(lambda i: i / 10)
    return st.one_of(
        st.integers(lo, hi),
        st.decimals(min_value=lo, max_value=hi, places=4, allow_nan=False, allow_infinity=False).map(float),
    )


def _after_funcs(meta: list[Any]) -> set[Any]:
    return {getattr(m, "func", None) for m in meta}


# --- the generic builder ---------------------------------------------------------------


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        return base, meta
    return tp, []


def strategy_for(tp: Any, meta: list[Any] | None = None) -> st.SearchStrategy[Any]:
    base, inner = _unwrap(tp)
    meta = [*inner, *(meta or [])]
    origin = typing.get_origin(base)
    if origin in (typing.Union, pytypes.UnionType):
        (arg,) = [a for a in typing.get_args(base) if a is not type(None)]
        return strategy_for(arg, meta)
    if origin is list:
        (item,) = typing.get_args(base)
        lo = max((m.min_length for m in meta if isinstance(m, annotated_types.MinLen)), default=0)
        return st.lists(strategy_for(item), min_size=lo, max_size=max(lo, MAX_LIST))
    if isinstance(base, type) and issubclass(base, OcpiModel):
        return wire_dicts(base)
    if isinstance(base, type) and issubclass(base, Enum):
        return st.sampled_from([e.value for e in base])
    if base is bool:
        return st.booleans()
    if base is int:
        lo = max((m.ge for m in meta if isinstance(m, annotated_types.Ge)), default=-(2**31))
        hi = min((m.le for m in meta if isinstance(m, annotated_types.Le)), default=2**31)
        return st.integers(lo, hi)
    if base is datetime:
        return _datetime_text()
    if base is date:
        return _date_text()
    if base is Decimal:
        funcs = _after_funcs(meta)
        bounds = next((f for f in funcs if isinstance(f, ocpi_types.Bounds)), None)
        return _number(bounds, chargingprofiles._one_decimal in funcs)
    if base is str:
        if ocpi_types._iana_zone in _after_funcs(meta):
            return st.sampled_from(sorted(ocpi_types.iana_zones()))
        (c,) = [m for m in meta if isinstance(m, StringConstraints)]
        return _string(c)
    raise NotImplementedError(f"no strategy for {tp!r}")


def _fix_publish_token(d: dict[str, Any]) -> dict[str, Any]:
    if all(d.get(k) is None for k in ("uid", "visual_number", "group_id")):
        d["group_id"] = "GROUP-1"
    if d.get("uid") is not None and d.get("type") is None:
        d["type"] = "RFID"
    if d.get("visual_number") is not None and d.get("issuer") is None:
        d["issuer"] = "Issuer"
    return d


def _fix_hours(d: dict[str, Any]) -> dict[str, Any]:
    if not d["twentyfourseven"] and not d.get("regular_hours"):
        d["regular_hours"] = [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}]
    return d


def _fix_start_session(d: dict[str, Any]) -> dict[str, Any]:
    if d.get("connector_id") is not None and d.get("evse_uid") is None:
        d["evse_uid"] = "EVSE-1"
    return d


@st.composite
def _regular_hours(draw: st.DrawFn) -> dict[str, Any]:
    begin, end = sorted(draw(st.lists(st.integers(0, 24 * 60 - 1), min_size=2, max_size=2, unique=True)))
    return {
        "weekday": draw(st.integers(1, 7)),
        "period_begin": f"{begin // 60:02d}:{begin % 60:02d}",
        "period_end": f"{end // 60:02d}:{end % 60:02d}",
    }


def _fix_ampere_rates(d: dict[str, Any]) -> dict[str, Any]:
    # Rates share the W bound; in amperes they stay within MAX_CURRENT_A (ChargingProfile).
    if d["charging_rate_unit"] != "A":
        return d

    def amps(rate: float) -> float:
        return rate if rate <= ocpi_types.MAX_CURRENT_A else round(rate % ocpi_types.MAX_CURRENT_A, 1)

    if d.get("min_charging_rate") is not None:
        d["min_charging_rate"] = amps(d["min_charging_rate"])
    for p in d.get("charging_profile_period") or ():
        p["limit"] = amps(p["limit"])
    return d


FIXUPS = {
    chargingprofiles.ChargingProfile: _fix_ampere_rates,
    locations.PublishTokenType: _fix_publish_token,
    locations.Hours: _fix_hours,
    commands.StartSession: _fix_start_session,
}
OVERRIDES: dict[type[OcpiModel], st.SearchStrategy[dict[str, Any]]] = {
    locations.RegularHours: _regular_hours(),
}

_cache: dict[type[OcpiModel], st.SearchStrategy[dict[str, Any]]] = {}


def wire_dicts(model: type[OcpiModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid wire JSON for `model`: optional fields absent, null, or set."""
    if model in OVERRIDES:
        return OVERRIDES[model]
    if model not in _cache:
        required, optional = {}, {}
        for name, field in model.model_fields.items():
            value = strategy_for(field.annotation, list(field.metadata))
            if field.is_required():
                required[name] = value
            else:
                # null is accepted on input and must come back as "absent".
                optional[name] = st.one_of(st.none(), value, value)
        strat = st.fixed_dictionaries(required, optional=optional)
        if model in FIXUPS:
            strat = strat.map(FIXUPS[model])
        _cache[model] = strat
    return _cache[model]


# --- the properties -----------------------------------------------------------------------


def _nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path or "(root)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nulls(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nulls(v, f"{path}.{i}")]
    return []


def test_every_model_is_covered() -> None:
    # Guards the discovery above: an import or naming slip would make this file test nothing.
    names = {cls.__name__ for cls in MODELS}
    assert {"Location", "EVSE", "Connector", "Token", "AuthorizationInfo", "StartSession", "ReserveNow"} <= names
    assert {"ChargingProfile", "SetChargingProfile", "ClientInfo", "Terminal", "FinancialAdviceConfirmation"} <= names


@pytest.mark.parametrize("model", MODELS, ids=lambda cls: cls.__name__)
def test_roundtrip(model: type[OcpiModel]) -> None:
    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(wire_dicts(model))
    def check(d: dict[str, Any]) -> None:
        m = model.from_wire(d)
        b = m.to_json_bytes()
        assert model.from_wire(b).to_json_bytes() == b
        assert model.from_wire(b) == m
        # The same through the JSON parser, as it arrives over HTTP.
        assert model.from_wire(json.dumps(d)).to_json_bytes() == b
        assert _nulls(json.loads(b)) == []
        # Absent stays absent, present stays present (an empty list included).
        assert json.loads(b).keys() == {k for k, v in d.items() if v is not None}

    check()


def test_datetime_emitted_in_one_canonical_form() -> None:
    # The round trip above only proves idempotence; this pins the form itself.
    from evroam.ocpi.hubclientinfo import ClientInfo

    base = {"party_id": "ABC", "country_code": "NL", "role": "CPO", "status": "CONNECTED"}
    for given_text, emitted in [
        ("2015-06-29T20:39:09", "2015-06-29T20:39:09Z"),
        ("2016-12-29T17:45:09.2Z", "2016-12-29T17:45:09.2Z"),
        ("2018-01-01T01:08:01.123456789", "2018-01-01T01:08:01.123456Z"),
    ]:
        wire = json.loads(ClientInfo.from_wire({**base, "last_updated": given_text}).to_json_bytes())
        assert wire["last_updated"] == emitted
    assert datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC) == ClientInfo.from_wire(
        {**base, "last_updated": "2015-06-29T20:39:09"}
    ).last_updated
