"""ChargingProfiles, the CPO's side (it owns the sessions): the three
requests it takes, and how its answers and results take shape
(sync/tracker.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.chargingprofiles import (ActiveChargingProfile, ActiveChargingProfileResult, ChargingProfile,
                                          ChargingProfileResponse, ChargingProfileResponseType, ChargingProfileResult,
                                          ChargingProfileResultType, ClearProfileResult)
from evroam.ocpi.common import DisplayText
from evroam.sync.tracker import Answers


class ProfileRequest(StrEnum):
    """The three ChargingProfiles requests, named by what they ask for."""

    GET_ACTIVE = "GET_ACTIVE"  # GET: answered by an ActiveChargingProfileResult
    SET = "SET"  # PUT SetChargingProfile: a ChargingProfileResult
    CLEAR = "CLEAR"  # DELETE: a ClearProfileResult


PROFILE_RESULT_MODELS: dict[ProfileRequest, type[OcpiModel]] = {
    ProfileRequest.GET_ACTIVE: ActiveChargingProfileResult,
    ProfileRequest.SET: ChargingProfileResult,
    ProfileRequest.CLEAR: ClearProfileResult,
}


@dataclass(frozen=True, slots=True)
class ChargingProfileRequest:
    """What a ChargingProfiles hook receives (the session is on the handle)."""

    type: ProfileRequest
    session_id: str
    response_url: str
    duration: int | None = None  # GET_ACTIVE
    charging_profile: ChargingProfile | None = None  # SET


def result_body(type_: str, result: Any, message: list[DisplayText] | None,
                profile: ActiveChargingProfile | None) -> OcpiModel:
    """What `handle.result(...)` posts: the result model of the request, given
    or made; only GET_ACTIVE's carries a profile."""
    model = PROFILE_RESULT_MODELS[ProfileRequest(type_)]
    if isinstance(result, model):
        return result
    if message is not None:
        raise ValueError("ChargingProfile results carry no message")
    if profile is not None:
        if model is not ActiveChargingProfileResult:
            raise ValueError(f"a {model.__name__} has no profile")
        return ActiveChargingProfileResult(result=ChargingProfileResultType(result), profile=profile)
    return model(result=ChargingProfileResultType(result))


ANSWERS = Answers(ChargingProfileResponse, ChargingProfileResponseType, result_body)
