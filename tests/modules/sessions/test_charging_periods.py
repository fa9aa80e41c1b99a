"""A Session PATCH appends charging_periods instead of replacing them
(mod_sessions), on the receiver's merge function alone."""

from __future__ import annotations

import copy

import pytest

from evroam.ocpi.status import OcpiError
from evroam.modules.sessions.periods import append_periods


def period(minute: int, kwh: float) -> dict:
    return {"start_date_time": f"2026-01-01T10:{minute:02d}:00Z", "dimensions": [{"type": "ENERGY", "volume": kwh}]}


STORED = {"id": "S1", "kwh": 3, "status": "ACTIVE", "last_updated": "2026-01-01T10:15:00Z",
          "charging_periods": [period(0, 1), period(10, 2)]}


def test_new_periods_are_added_after_the_stored_ones_and_fields_replace():
    merged = append_periods(STORED, {"kwh": 4.5, "last_updated": "2026-01-01T10:30:00Z",
                                     "charging_periods": [period(20, 1.5)]})
    assert merged == {**STORED, "kwh": 4.5, "last_updated": "2026-01-01T10:30:00Z",
                      "charging_periods": [period(0, 1), period(10, 2), period(20, 1.5)]}


def test_several_new_periods_keep_their_order():
    merged = append_periods(STORED, {"charging_periods": [period(20, 1), period(30, 1), period(25, 1)]})
    assert merged["charging_periods"] == [period(0, 1), period(10, 2), period(20, 1), period(30, 1), period(25, 1)]


@pytest.mark.parametrize("patch", [{"status": "COMPLETED"}, {"status": "COMPLETED", "charging_periods": []},
                                   {"status": "COMPLETED", "charging_periods": None}],
                         ids=["absent", "empty", "null"])
def test_without_new_periods_the_stored_ones_stay(patch):
    assert append_periods(STORED, patch) == {**STORED, "status": "COMPLETED"}


def test_no_periods_stored_and_none_sent_leaves_none():
    assert append_periods({"id": "S1", "kwh": 0}, {"kwh": 1, "charging_periods": []}) == {"id": "S1", "kwh": 1}


def test_first_periods_on_a_session_without_any():
    assert append_periods({"id": "S1"}, {"charging_periods": [period(0, 1)]}) == {
        "id": "S1", "charging_periods": [period(0, 1)]}


def test_a_retried_patch_does_not_add_a_period_twice():
    """The response to the first PATCH was lost and the sender sends it again."""
    patch = {"charging_periods": [period(20, 1.5)]}
    once = append_periods(STORED, patch)
    assert append_periods(once, patch) == once
    # The same period written differently is the same period.
    respelled = {"charging_periods": [{**period(20, 1.5), "start_date_time": "2026-01-01T10:20:00.000Z"}]}
    assert append_periods(once, respelled)["charging_periods"] == once["charging_periods"]


def test_a_period_equal_to_a_stored_one_is_skipped_the_others_added():
    merged = append_periods(STORED, {"charging_periods": [period(10, 2), period(20, 1)]})
    assert merged["charging_periods"] == [period(0, 1), period(10, 2), period(20, 1)]


def test_the_stored_document_and_the_patch_are_not_changed():
    stored, patch = copy.deepcopy(STORED), {"charging_periods": [period(20, 1)]}
    append_periods(stored, patch)
    assert (stored, patch) == (STORED, {"charging_periods": [period(20, 1)]})


def test_an_invalid_new_period_is_refused_by_its_index():
    with pytest.raises(OcpiError) as caught:
        append_periods(STORED, {"charging_periods": [period(20, 1), {"start_date_time": "soon", "dimensions": []}]})
    assert caught.value.status_code == 2001
    assert "charging_periods.1" in str(caught.value)


def test_periods_that_are_not_a_list_are_left_for_validation_to_name():
    assert append_periods(STORED, {"charging_periods": "lots"})["charging_periods"] == "lots"
