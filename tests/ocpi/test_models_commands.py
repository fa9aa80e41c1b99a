"""Commands, ChargingProfiles and HubClientInfo object models."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.chargingprofiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfile,
    ChargingProfileResponse,
    ChargingProfileResponseType,
    ChargingProfileResult,
    ClearProfileResult,
    SetChargingProfile,
)
from evroam.ocpi.commands import (
    CancelReservation,
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    CommandType,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
)
from evroam.ocpi.common import Role
from evroam.ocpi.hubclientinfo import ClientInfo, ConnectionStatus
from tests.ocpi.helpers import assert_rejected, drop

TOKEN = {
    "country_code": "DE",
    "party_id": "TNM",
    "uid": "bdf21bce-fc97-11e8-8eb2-f2801f1b9fd1",
    "type": "APP_USER",
    "contract_id": "DE8ACC12E46L89",
    "issuer": "TheNewMotion",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2018-12-10T17:16:15Z",
}
URL = "https://emsp.example.com/ocpi/commands/START_SESSION/1234"
START = {"response_url": URL, "token": TOKEN, "location_id": "LOC1"}
RESERVE = {
    "response_url": URL,
    "token": TOKEN,
    "expiry_date": "2020-01-01T12:00:00Z",
    "reservation_id": "R1",
    "location_id": "LOC1",
}






def roundtrip(model: type[OcpiModel], data: dict[str, Any]) -> OcpiModel:
    m = model.from_wire(data)
    assert json.loads(m.to_json_bytes()) == data
    return m


# --- commands -------------------------------------------------------------------------


def test_command_type_values() -> None:
    assert [c.value for c in CommandType] == [
        "CANCEL_RESERVATION",
        "RESERVE_NOW",
        "START_SESSION",
        "STOP_SESSION",
        "UNLOCK_CONNECTOR",
    ]


def test_start_session() -> None:
    roundtrip(StartSession, START)
    roundtrip(StartSession, {**START, "evse_uid": "3256", "connector_id": "1", "authorization_reference": "A1"})
    roundtrip(StartSession, {**START, "evse_uid": "3256"})


def test_start_session_connector_requires_evse() -> None:
    assert_rejected(StartSession, {**START, "connector_id": "1"}, "evse_uid")


@pytest.mark.parametrize("field", ["response_url", "token", "location_id"])
def test_start_session_required(field: str) -> None:
    assert_rejected(StartSession, drop(START, field), field)


def test_start_session_nested_token_errors_are_named() -> None:
    assert_rejected(StartSession, {**START, "token": drop(TOKEN, "type")}, "token.type")
    assert_rejected(StartSession, {**START, "token": {**TOKEN, "valid": "true"}}, "token.valid")


def test_reserve_now() -> None:
    roundtrip(ReserveNow, {**RESERVE, "evse_uid": "3256", "authorization_reference": "A1"})
    for field in ("response_url", "token", "expiry_date", "reservation_id", "location_id"):
        assert_rejected(ReserveNow, drop(RESERVE, field), field)
    assert_rejected(ReserveNow, {**RESERVE, "expiry_date": "2020-01-01T12:00:00+00:00"}, "expiry_date")
    assert_rejected(ReserveNow, {**RESERVE, "reservation_id": "x" * 37}, "reservation_id")
    r = ReserveNow.from_wire({**RESERVE, "expiry_date": "2020-01-01T12:00:00.25"})
    assert json.loads(r.to_json_bytes())["expiry_date"] == "2020-01-01T12:00:00.25Z"


def test_other_commands() -> None:
    roundtrip(CancelReservation, {"response_url": URL, "reservation_id": "R1"})
    roundtrip(StopSession, {"response_url": URL, "session_id": "S1"})
    unlock = {"response_url": URL, "location_id": "LOC1", "evse_uid": "3256", "connector_id": "1"}
    roundtrip(UnlockConnector, unlock)
    for field in unlock:
        assert_rejected(UnlockConnector, drop(unlock, field), field)
    assert_rejected(StopSession, {"response_url": URL, "session_id": 42}, "session_id")
    assert_rejected(CancelReservation, {"response_url": "https://x/" + "a" * 250, "reservation_id": "R1"}, "response_url")
    assert_rejected(CancelReservation, {"response_url": "https://x/a b", "reservation_id": "R1"}, "response_url")


def test_command_response_and_result() -> None:
    r = roundtrip(CommandResponse, {"result": "ACCEPTED", "timeout": 30, "message": [{"language": "en", "text": "OK"}]})
    assert r.result is CommandResponseType.ACCEPTED
    assert_rejected(CommandResponse, {"result": "ACCEPTED"}, "timeout")
    assert_rejected(CommandResponse, {"result": "ACCEPTED", "timeout": "30"}, "timeout")
    assert_rejected(CommandResponse, {"result": "ACCEPTED", "timeout": 30.0}, "timeout")
    assert_rejected(CommandResponse, {"result": "accepted", "timeout": 30}, "result")
    assert_rejected(CommandResponse, {"result": "ACCEPTED", "timeout": 30, "message": {"language": "en", "text": "x"}}, "message")
    res = roundtrip(CommandResult, {"result": "CANCELED_RESERVATION"})
    assert res.result is CommandResultType.CANCELED_RESERVATION
    assert_rejected(CommandResult, {"result": "CANCELLED_RESERVATION"}, "result")
    assert_rejected(CommandResult, {"message": []}, "result")
    assert_rejected(CommandResult, {"result": "FAILED", "message": [{"language": "en", "text": "x" * 513}]}, "message.0.text")


# --- charging profiles ---------------------------------------------------------------------

PROFILE = {
    "charging_rate_unit": "A",
    "charging_profile_period": [{"start_period": 0, "limit": 16}, {"start_period": 1800, "limit": 8.1}],
}


def test_charging_profile() -> None:
    p = roundtrip(ChargingProfile, {**PROFILE, "start_date_time": "2020-01-01T12:00:00Z", "duration": 3600, "min_charging_rate": 6.5})
    assert p.charging_profile_period[1].limit == Decimal("8.1")
    roundtrip(ChargingProfile, {"charging_rate_unit": "W"})
    assert_rejected(ChargingProfile, {}, "charging_rate_unit")
    assert_rejected(ChargingProfile, {"charging_rate_unit": "w"}, "charging_rate_unit")
    assert_rejected(ChargingProfile, {"charging_rate_unit": "kW"}, "charging_rate_unit")
    assert_rejected(ChargingProfile, {**PROFILE, "duration": "3600"}, "duration")
    assert_rejected(ChargingProfile, {**PROFILE, "start_date_time": "2020-01-01T13:00:00+01:00"}, "start_date_time")


@pytest.mark.parametrize(
    ("period", "field"),
    [
        ({"start_period": 0, "limit": 8.15}, "charging_profile_period.0.limit"),
        ({"start_period": 0, "limit": "8.1"}, "charging_profile_period.0.limit"),
        ({"start_period": "0", "limit": 8.1}, "charging_profile_period.0.start_period"),
        ({"start_period": 0}, "charging_profile_period.0.limit"),
        ({"limit": 8.0}, "charging_profile_period.0.start_period"),
    ],
)
def test_charging_profile_period(period: dict[str, Any], field: str) -> None:
    assert_rejected(ChargingProfile, {"charging_rate_unit": "A", "charging_profile_period": [period]}, field)


def test_min_charging_rate_one_decimal() -> None:
    assert_rejected(ChargingProfile, {"charging_rate_unit": "A", "min_charging_rate": 6.25}, "min_charging_rate")


def test_set_and_active_profiles() -> None:
    roundtrip(SetChargingProfile, {"charging_profile": PROFILE, "response_url": URL})
    assert_rejected(SetChargingProfile, {"charging_profile": PROFILE}, "response_url")
    assert_rejected(SetChargingProfile, {"charging_profile": {}, "response_url": URL}, "charging_profile.charging_rate_unit")
    active = {"start_date_time": "2020-01-01T12:00:00Z", "charging_profile": PROFILE}
    roundtrip(ActiveChargingProfile, active)
    assert_rejected(ActiveChargingProfile, {"charging_profile": PROFILE}, "start_date_time")
    roundtrip(ActiveChargingProfileResult, {"result": "ACCEPTED", "profile": active})
    roundtrip(ActiveChargingProfileResult, {"result": "UNKNOWN"})
    assert_rejected(ActiveChargingProfileResult, {"result": "ACCEPTED", "profile": {"charging_profile": PROFILE}}, "profile.start_date_time")


def test_results_and_response() -> None:
    for model in (ChargingProfileResult, ClearProfileResult):
        roundtrip(model, {"result": "REJECTED"})
        assert_rejected(model, {"result": "TOO_OFTEN"}, "result")  # a response type, not a result type
        assert_rejected(model, {}, "result")
    r = roundtrip(ChargingProfileResponse, {"result": "TOO_OFTEN", "timeout": 60})
    assert r.result is ChargingProfileResponseType.TOO_OFTEN
    assert_rejected(ChargingProfileResponse, {"result": "ACCEPTED"}, "timeout")
    assert_rejected(ChargingProfileResponse, {"result": "ACCEPTED", "timeout": True}, "timeout")


# --- hub client info ---------------------------------------------------------------------------

CLIENT = {"party_id": "ABC", "country_code": "NL", "role": "CPO", "status": "CONNECTED", "last_updated": "2019-01-01T00:00:00Z"}


def test_client_info() -> None:
    c = roundtrip(ClientInfo, CLIENT)
    assert c.role is Role.CPO and c.status is ConnectionStatus.CONNECTED
    for field in CLIENT:
        assert_rejected(ClientInfo, drop(CLIENT, field), field)
    assert_rejected(ClientInfo, {**CLIENT, "role": "cpo"}, "role")
    assert_rejected(ClientInfo, {**CLIENT, "status": "ONLINE"}, "status")
    assert_rejected(ClientInfo, {**CLIENT, "party_id": "ABCD"}, "party_id")
    assert_rejected(ClientInfo, {**CLIENT, "last_updated": "2019-01-01T00:00:00+00:00"}, "last_updated")
