"""The Location merge (evroam.modules.locations.merge, docs/ordering.md): a
Receiver ends with the sender's latest state whatever order the messages
arrive in."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evroam.ocpi.locations import Location
from evroam.modules.locations import merge
from evroam.modules.locations.rules import UnknownLocationObject
from tests.locsender import Message, connector, evse, histories, location, sorted_children


def deliver(messages: list[Message], held: merge.Held | None = None,
            via_storage: bool = False) -> merge.Held | None:
    """Apply messages in the given order. One whose object (or parent) is not
    there yet fails as the Receiver answers 404, and the sender tries it
    again later (at-least-once delivery)."""
    queue = list(messages)
    tries = 0
    while queue:
        msg = queue.pop(0)
        tries += 1
        assert tries < 50 * len(messages) + 50, "a message never found its object"
        try:
            held, _ = merge.receive(held, msg.method, msg.body, *msg.path)
        except UnknownLocationObject:
            queue.append(msg)
            continue
        if via_storage:
            data = Location.from_wire(held.doc).to_json_bytes().decode()
            held = merge.load(data, merge.dump_versions(merge.Held(held.doc, held.versions), data))
    return held


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.booleans())
def test_any_delivery_order_ends_in_the_senders_latest_state(history, via_storage):
    sender, shuffled = history
    held = deliver(shuffled, via_storage=via_storage)
    assert held is not None
    assert sorted_children(held.doc) == sorted_children(sender.state)
    Location.from_wire(held.doc)  # and it is a valid Location


T1, T2, T3, T4 = ("2026-03-01T00:00:01Z", "2026-03-01T00:00:02Z", "2026-03-01T00:00:03Z", "2026-03-01T00:00:04Z")


def test_the_issue_sequence_a_late_location_put_after_a_newer_evse_patch():
    first = location(T1)
    first["evses"].append(evse("E2", T1))
    second = {**first, "name": "Utrecht CS", "last_updated": T2,
              "evses": [{**evse("E0", T1), "status": "BLOCKED", "last_updated": T2}, evse("E1", T1), evse("E2", T1)]}
    patch = Message("PATCH", ("E2",), {"status": "CHARGING", "last_updated": T3})
    held = deliver([Message("PUT", (), first), patch, Message("PUT", (), second)])
    assert held.doc["name"] == "Utrecht CS"
    assert [(e["uid"], e["status"], e["last_updated"]) for e in held.doc["evses"]] == [
        ("E0", "BLOCKED", T2), ("E1", "AVAILABLE", T1), ("E2", "CHARGING", T3)]
    assert held.doc["last_updated"] == T3


def test_a_patch_between_two_puts_keeps_its_field_and_takes_the_puts_others():
    # PUT(t1), PUT(t2) changes physical_reference, PATCH(t3) changes status; t3 arrives before t2.
    first = evse("E0", T1)
    second = {**first, "physical_reference": "B", "last_updated": T2}
    held = deliver([Message("PUT", (), location(T1)), Message("PATCH", ("E0",), {"status": "CHARGING",
                                                                               "last_updated": T3}),
                    Message("PUT", ("E0",), second)])
    e0 = held.doc["evses"][0]
    assert (e0["status"], e0["physical_reference"], e0["last_updated"]) == ("CHARGING", "B", T3)


def test_an_evse_left_out_of_a_newer_location_put_is_removed_not_deleted():
    held = deliver([Message("PUT", (), location(T1)), Message("PUT", (), {**location(T2), "evses": [evse("E0", T1)]})])
    assert [(e["uid"], e["status"], e["last_updated"]) for e in held.doc["evses"]] == [
        ("E0", "AVAILABLE", T1), ("E1", "REMOVED", T2)]


def test_an_evse_added_after_a_location_put_survives_that_put_arriving_late():
    held = deliver([Message("PUT", (), location(T1)), Message("PUT", ("E5",), evse("E5", T3)),
                    Message("PUT", (), {**location(T2), "name": "Jaarbeurs"})])
    assert [(e["uid"], e["status"]) for e in held.doc["evses"]] == [("E0", "AVAILABLE"), ("E1", "AVAILABLE"),
                                                                    ("E5", "AVAILABLE")]
    assert (held.doc["name"], held.doc["last_updated"]) == ("Jaarbeurs", T3)


def test_a_connector_left_out_of_a_newer_evse_put_is_removed_and_stays_removed():
    two = {**evse("E0", T1), "connectors": [connector("1", T1), connector("2", T1)]}
    loc = {**location(T1), "evses": [two]}
    held = deliver([Message("PUT", (), loc), Message("PUT", ("E0",), {**evse("E0", T3)}),
                    Message("PATCH", ("E0", "2"), {"max_amperage": 16, "last_updated": T2}),
                    Message("PUT", (), {**loc, "name": "x", "last_updated": T2})])
    assert [c["id"] for c in held.doc["evses"][0]["connectors"]] == ["1"]
    # A newer Connector PUT brings it back.
    held, created = merge.receive(held, "PUT", connector("2", T4), "E0", "2")
    assert created and [c["id"] for c in held.doc["evses"][0]["connectors"]] == ["1", "2"]


def test_an_unknown_target_is_unknown():
    held = deliver([Message("PUT", (), location(T1))])
    for path in (("E9",), ("E0", "9")):
        try:
            merge.receive(held, "PATCH", {"status": "BLOCKED", "last_updated": T2}, *path)
        except UnknownLocationObject:
            continue
        raise AssertionError(path)


def test_bookkeeping_is_ignored_when_the_document_was_replaced_without_it():
    held = deliver([Message("PUT", (), location(T1)),
                    Message("PATCH", ("E0", "1"), {"max_amperage": 16, "last_updated": T3})])
    data = Location.from_wire(held.doc).to_json_bytes().decode()
    note = merge.dump_versions(held, data)
    assert note is not None
    # The same document: the EVSE's own fields are as of T1, its Connector's as of T3.
    assert merge.load(data, note).versions.evses["E0"].own.at == merge.parse_datetime(T1)
    # A pull wrote another document and left the note: the document's stamps stand.
    pulled = Location.from_wire({**held.doc, "name": "pulled"}).to_json_bytes().decode()
    assert merge.load(pulled, note).versions.evses["E0"].own.at == merge.parse_datetime(T3)


def test_a_location_that_only_had_whole_puts_needs_no_bookkeeping():
    held = deliver([Message("PUT", (), location(T1)), Message("PUT", (), {**location(T2), "name": "y"})])
    data = Location.from_wire(held.doc).to_json_bytes().decode()
    assert merge.dump_versions(held, data) is None
