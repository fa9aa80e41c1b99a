"""Tokens object models (mod_tokens.asciidoc)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from evroam.ocpi.tokens import (
    AllowedType,
    AuthorizationInfo,
    LocationReferences,
    ProfileType,
    Token,
    TokenType,
    WhitelistType,
)
from tests.ocpi.helpers import assert_rejected

TOKEN = {
    "country_code": "DE",
    "party_id": "TNM",
    "uid": "12345678905880",
    "type": "RFID",
    "contract_id": "DE8ACC12E46L89",
    "issuer": "TheNewMotion",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2018-12-10T17:25:10Z",
}


def token(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(TOKEN)
    for k, v in changes.items():
        if v is ...:
            del d[k]
        else:
            d[k] = v
    return d




def test_token_valid_minimal_and_full() -> None:
    t = Token.from_wire(TOKEN)
    assert t.type is TokenType.RFID and t.whitelist is WhitelistType.ALLOWED
    assert json.loads(t.to_json_bytes()) == TOKEN
    full = token(
        visual_number="DF000-2001-8999-1",
        group_id="DF000-2001-8999",
        language="it",
        default_profile_type="GREEN",
        energy_contract={"supplier_name": "Greenpeace Energy eG", "contract_id": "0123456789"},
    )
    t = Token.from_wire(full)
    assert t.default_profile_type is ProfileType.GREEN
    assert json.loads(t.to_json_bytes()) == full


@pytest.mark.parametrize(
    "field", ["country_code", "party_id", "uid", "type", "contract_id", "issuer", "valid", "whitelist", "last_updated"]
)
def test_token_required_field(field: str) -> None:
    # `type` included: "missing type means RFID" is for the ?type= URL parameter, not the object.
    assert_rejected(Token, token(**{field: ...}), field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("valid", "true"),
        ("valid", 1),
        ("uid", 12345678905880),
        ("issuer", None),
        ("energy_contract", "Greenpeace"),
        ("last_updated", 1544462710),
    ],
)
def test_token_wrong_type(field: str, value: Any) -> None:
    assert_rejected(Token, token(**{field: value}), field)


@pytest.mark.parametrize(
    ("field", "limit"), [("uid", 36), ("contract_id", 36), ("visual_number", 64), ("issuer", 64), ("group_id", 36)]
)
def test_token_max_length(field: str, limit: int) -> None:
    Token.from_wire(token(**{field: "x" * limit}))
    assert_rejected(Token, token(**{field: "x" * (limit + 1)}), field)


def test_energy_contract() -> None:
    assert_rejected(Token, token(energy_contract={"contract_id": "1"}), "energy_contract.supplier_name")
    assert_rejected(Token, token(energy_contract={"supplier_name": "x" * 65}), "energy_contract.supplier_name")
    assert_rejected(Token, token(energy_contract={"supplier_name": "E", "contract_id": "x" * 65}), "energy_contract.contract_id")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", "rfid"),
        ("type", "EMAID"),  # 2.3.0 only
        ("whitelist", "always"),
        ("whitelist", "ALLOWED OFFLINE"),
        ("default_profile_type", "green"),
        ("language", "EN"),
        ("language", "eng"),
        ("country_code", "DEU"),
        ("party_id", "TN"),
    ],
)
def test_token_enums_and_codes(field: str, value: Any) -> None:
    assert_rejected(Token, token(**{field: value}), field)


@pytest.mark.parametrize("text", ["2018-12-10T17:25:10+00:00", "2018-12-10T17:25:10.5+01:00", "2018-12-10"])
def test_token_bad_datetime(text: str) -> None:
    assert_rejected(Token, token(last_updated=text), "last_updated")


def test_token_datetime_without_z_and_with_fraction() -> None:
    a = Token.from_wire(token(last_updated="2018-12-10T17:25:10.123"))
    assert json.loads(a.to_json_bytes())["last_updated"] == "2018-12-10T17:25:10.123Z"


def test_token_control_character() -> None:
    assert_rejected(Token, token(issuer="The\tNewMotion"), "issuer")


def test_authorization_info() -> None:
    info = {
        "allowed": "ALLOWED",
        "token": TOKEN,
        "location": {"location_id": "LOC1", "evse_uids": ["3256", "3257"]},
        "authorization_reference": "auth-1",
        "info": {"language": "en", "text": "Welcome"},
    }
    ai = AuthorizationInfo.from_wire(info)
    assert ai.allowed is AllowedType.ALLOWED and ai.location is not None
    assert json.loads(ai.to_json_bytes()) == info
    assert_rejected(AuthorizationInfo, {**info, "allowed": "allowed"}, "allowed")
    assert_rejected(AuthorizationInfo, {k: v for k, v in info.items() if k != "token"}, "token")
    assert_rejected(AuthorizationInfo, {**info, "token": token(type=...)}, "token.type")
    assert_rejected(AuthorizationInfo, {**info, "authorization_reference": "x" * 37}, "authorization_reference")
    assert_rejected(AuthorizationInfo, {**info, "info": {"language": "en"}}, "info.text")


def test_location_references() -> None:
    LocationReferences.from_wire({"location_id": "LOC1"})
    assert_rejected(LocationReferences, {"evse_uids": ["1"]}, "location_id")
    assert_rejected(LocationReferences, {"location_id": "LOC1", "evse_uids": ["x" * 37]}, "evse_uids.0")
    assert_rejected(LocationReferences, {"location_id": "LOC1", "evse_uids": "3256"}, "evse_uids")


def test_unknown_fields_in_nested_token() -> None:
    info = {"allowed": "BLOCKED", "token": token(emaid="x"), "reason": "y"}
    unknown: set[str] = set()
    out = AuthorizationInfo.from_wire(info, unknown=unknown).to_json_bytes()
    assert unknown == {"Token.emaid", "AuthorizationInfo.reason"}
    assert b"emaid" not in out and b"reason" not in out
