"""The Receiver's write core (server/writes.py) without a database: what its
merges decide against a stored version, and the answer built from each outcome."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from evroam.modules import REGISTRY
from evroam.ocpi.status import OcpiError
from evroam.ocpi.types import parse_datetime
from evroam.server.objects import OLDER, SAME
from evroam.server.writes import Outcome, Written, answer, patch_merger, put_merger
from evroam.store.objects import ObjectKey, Stored
from tests.partners import tariff

SESSIONS, TARIFFS = REGISTRY["sessions"], REGISTRY["tariffs"]


def stored(doc: str, last_updated: str) -> Stored:
    return Stored(pk=1, data=doc, last_updated=parse_datetime(last_updated), stale=False, status=None, note=None)


def test_put_creates_replaces_and_keeps() -> None:
    old, new = tariff("T1", 0.25, "2026-01-01T00:00:00Z"), tariff("T1", 0.30, "2026-02-01T00:00:00Z")
    held = stored(new.to_json_bytes().decode(), "2026-02-01T00:00:00Z")
    assert put_merger(new)(None).kept is None
    assert put_merger(new)(held).kept is Outcome.UNCHANGED
    assert put_merger(old)(held).kept is Outcome.OLDER_KEPT
    assert put_merger(new)(stored(old.to_json_bytes().decode(), "2026-01-01T00:00:00Z")).kept is None


def test_patch_never_creates_and_keeps_an_older_one() -> None:
    key = ObjectKey("tariffs", 7, "NL", "CPO", "T1")
    held = stored(tariff("T1").to_json_bytes().decode(), "2026-02-01T00:00:00Z")
    with pytest.raises(OcpiError) as exc:
        patch_merger(TARIFFS, key, {"last_updated": "2026-03-01T00:00:00Z"}, None)(None)
    assert exc.value.http_status == 404 and "PUT it first" in str(exc.value.message)
    late = patch_merger(TARIFFS, key, {"currency": "USD", "last_updated": "2026-01-15T00:00:00Z"}, None)(held)
    assert late.kept is Outcome.OLDER_KEPT and late.data == held.data


def test_patch_merges_with_the_modules_merge() -> None:
    """Sessions' Module.merge appends charging periods rather than replacing them."""
    period = {"start_date_time": "2026-01-01T10:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 1}]}
    doc = {"country_code": "NL", "party_id": "CPO", "id": "S1", "start_date_time": "2026-01-01T10:00:00Z",
           "kwh": 0, "cdr_token": {"country_code": "DE", "party_id": "EMS", "uid": "0001", "type": "RFID",
                                   "contract_id": "DE-EMS-C0001"},
           "auth_method": "WHITELIST", "location_id": "L1", "evse_uid": "E1", "connector_id": "1",
           "currency": "EUR", "status": "ACTIVE", "charging_periods": [period],
           "last_updated": "2026-01-01T10:00:00Z"}
    later = {**period, "start_date_time": "2026-01-01T10:15:00Z"}
    patch = {"charging_periods": [later], "last_updated": "2026-01-01T10:15:00Z"}
    key = ObjectKey("sessions", 7, "NL", "CPO", "S1")
    merged = patch_merger(SESSIONS, key, patch, SESSIONS.merge)(stored(json.dumps(doc), doc["last_updated"]))
    assert merged.kept is None
    assert [p["start_date_time"] for p in json.loads(merged.data)["charging_periods"]] == [
        "2026-01-01T10:00:00Z", "2026-01-01T10:15:00Z"]


@pytest.mark.parametrize(("outcome", "status", "message"), [
    (Outcome.CREATED, 201, None), (Outcome.REPLACED, 200, None), (Outcome.UNCHANGED, 200, SAME),
    (Outcome.OLDER_KEPT, 200, OLDER), (Outcome.DELETED, 200, None),
])
def test_one_answer_per_outcome(outcome: Outcome, status: int, message: str | None) -> None:
    response = answer(Written(outcome, None, None))  # type: ignore[arg-type]
    body = json.loads(response.body)
    assert (response.status_code, body["status_code"], body.get("status_message"), "data" in body) == (
        status, 1000, message, False)
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
