"""Locations object models (mod_locations.asciidoc): what is accepted, what is refused and how it is named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from evroam.ocpi.locations import (
    EVSE,
    AdditionalGeoLocation,
    Connector,
    ConnectorType,
    EnergyMix,
    GeoLocation,
    Hours,
    Location,
    PublishTokenType,
    RegularHours,
    StatusSchedule,
)
from tests.ocpi.helpers import assert_rejected

CONNECTOR = {
    "id": "1",
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 16,
    "last_updated": "2019-06-24T12:39:09Z",
}
EVSE_ = {"uid": "3256", "status": "AVAILABLE", "connectors": [CONNECTOR], "last_updated": "2019-06-24T12:39:09Z"}
LOCATION = {
    "country_code": "BE",
    "party_id": "BEC",
    "id": "LOC1",
    "publish": True,
    "address": "F.Rooseveltlaan 3A",
    "city": "Gent",
    "country": "BEL",
    "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
    "evses": [EVSE_],
    "time_zone": "Europe/Brussels",
    "last_updated": "2019-06-24T12:39:09Z",
}


def location(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(LOCATION)
    d.update(changes)
    return d


def set_path(d: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `d` with the dotted `path` set (or removed when value is ...)."""
    d = copy.deepcopy(d)
    *parents, last = path.split(".")
    node: Any = d
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return d




# --- valid -------------------------------------------------------------------------


def test_minimal_location_parses_and_serialises_without_absent_fields() -> None:
    loc = Location.from_wire(LOCATION)
    assert loc.evses[0].connectors[0].standard is ConnectorType.IEC_62196_T2
    wire = json.loads(loc.to_json_bytes())
    assert wire == LOCATION
    assert b"null" not in loc.to_json_bytes()


def test_empty_list_and_absent_list_stay_distinct() -> None:
    wire = json.loads(Location.from_wire(location(evses=[])).to_json_bytes())
    assert wire["evses"] == []
    wire = json.loads(Location.from_wire(set_path(LOCATION, "evses", ...)).to_json_bytes())
    assert "evses" not in wire


def test_charging_when_closed_absent_is_not_filled_in() -> None:
    assert "charging_when_closed" not in json.loads(Location.from_wire(LOCATION).to_json_bytes())


def test_full_location_parses() -> None:
    d = location(
        publish=False,
        publish_allowed_to=[{"uid": "12345678905880", "type": "RFID"}, {"visual_number": "1-2", "issuer": "X"}],
        name="Gent Zuid",
        postal_code="9000",
        state="Oost-Vlaanderen",
        related_locations=[{"latitude": "51.047600", "longitude": "3.729945", "name": {"language": "nl", "text": "Ingang"}}],
        parking_type="ON_STREET",
        directions=[{"language": "en", "text": "Go left"}],
        operator={"name": "BeCharged", "website": "https://example.com", "logo": {"url": "https://example.com/l.png", "category": "OPERATOR", "type": "png", "width": 512, "height": 512}},
        suboperator={"name": "Sub"},
        owner={"name": "Owner"},
        facilities=["WIFI", "CAFE"],
        opening_times={"twentyfourseven": True},
        charging_when_closed=False,
        images=[{"url": "https://example.com/i.jpg", "category": "LOCATION", "type": "jpeg"}],
        energy_mix={"is_green_energy": True, "energy_sources": [{"source": "SOLAR", "percentage": 100}]},
    )
    d["evses"][0].update(
        evse_id="BE*BEC*E041503001",
        status_schedule=[{"period_begin": "2019-07-01T00:00:00Z", "status": "PLANNED"}],
        capabilities=["RESERVABLE", "START_SESSION_CONNECTOR_REQUIRED"],
        floor_level="-1",
        coordinates={"latitude": "-51.047599", "longitude": "-126.104965"},
        physical_reference="1",
        parking_restrictions=["EV_ONLY"],
    )
    d["evses"][0]["connectors"][0].update(
        max_electric_power=22000, tariff_ids=["11", "12"], terms_and_conditions="https://example.com/tc"
    )
    loc = Location.from_wire(d)
    assert json.loads(loc.to_json_bytes()) == d


def test_mixed_case_connector_standard_is_kept_as_is() -> None:
    assert Connector.from_wire({**CONNECTOR, "standard": "IEC_60309_2_single_16"}).standard == "IEC_60309_2_single_16"
    assert_rejected(Connector, {**CONNECTOR, "standard": "IEC_60309_2_SINGLE_16"}, "standard")


# --- missing required fields ---------------------------------------------------------

LOCATION_REQUIRED = ["country_code", "party_id", "id", "publish", "address", "city", "country", "coordinates", "time_zone", "last_updated"]


@pytest.mark.parametrize("field", LOCATION_REQUIRED)
def test_location_required_field(field: str) -> None:
    assert_rejected(Location, set_path(LOCATION, field, ...), field)


@pytest.mark.parametrize("field", ["uid", "status", "connectors", "last_updated"])
def test_evse_required_field(field: str) -> None:
    assert_rejected(Location, set_path(LOCATION, f"evses.0.{field}", ...), f"evses.0.{field}")


@pytest.mark.parametrize("field", ["id", "standard", "format", "power_type", "max_voltage", "max_amperage", "last_updated"])
def test_connector_required_field(field: str) -> None:
    assert_rejected(Location, set_path(LOCATION, f"evses.0.connectors.0.{field}", ...), f"evses.0.connectors.0.{field}")


def test_evse_needs_at_least_one_connector() -> None:
    assert_rejected(EVSE, {**EVSE_, "connectors": []}, "connectors")


# --- wrong JSON types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("evses.0.connectors.0.max_voltage", "230"),
        ("evses.0.connectors.0.max_voltage", 230.5),
        ("evses.0.connectors.0.max_amperage", True),
        ("publish", "true"),
        ("publish", 1),
        ("charging_when_closed", "false"),
        ("coordinates.latitude", 51.047599),
        ("evses.0.physical_reference", 3),
        ("evses", {}),
        ("facilities", "WIFI"),
        ("evses.0.connectors.0.tariff_ids", "11"),
    ],
)
def test_wrong_json_type(path: str, value: Any) -> None:
    assert_rejected(Location, set_path(LOCATION, path, value), path)


def test_number_given_as_string() -> None:
    mix = {"is_green_energy": False, "energy_sources": [{"source": "GAS", "percentage": "35.9"}]}
    assert_rejected(Location, location(energy_mix=mix), "energy_mix.energy_sources.0.percentage")
    mix = {"is_green_energy": False, "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": "372"}]}
    assert_rejected(EnergyMix, mix, "environ_impact.0.amount")


# --- over-long and malformed strings ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("id", 36),
        ("name", 255),
        ("address", 45),
        ("city", 45),
        ("postal_code", 10),
        ("state", 20),
        ("evses.0.uid", 36),
        ("evses.0.evse_id", 48),
        ("evses.0.floor_level", 4),
        ("evses.0.physical_reference", 16),
        ("evses.0.connectors.0.id", 36),
    ],
)
def test_max_length(path: str, limit: int) -> None:
    Location.from_wire(set_path(LOCATION, path, "x" * limit))
    assert_rejected(Location, set_path(LOCATION, path, "x" * (limit + 1)), path)


def test_max_length_in_nested_classes() -> None:
    assert_rejected(Location, location(operator={"name": "x" * 101}), "operator.name")
    assert_rejected(Location, location(publish=False, publish_allowed_to=[{"visual_number": "x" * 65, "issuer": "i"}]), "publish_allowed_to.0.visual_number")
    image = {"url": "https://example.com/i", "category": "CHARGER", "type": "jpegx"}
    assert_rejected(Location, location(images=[image]), "images.0.type")
    mix = {"is_green_energy": True, "supplier_name": "x" * 65}
    assert_rejected(Location, location(energy_mix=mix), "energy_mix.supplier_name")
    tariffs = set_path(LOCATION, "evses.0.connectors.0.tariff_ids", ["x" * 37])
    assert_rejected(Location, tariffs, "evses.0.connectors.0.tariff_ids.0")
    assert_rejected(Location, location(images=[{**image, "type": "png", "width": 100000}]), "images.0.width")


def test_string_refuses_control_characters_and_cistring_non_ascii() -> None:
    assert_rejected(Location, location(address="Street\n1"), "address")
    assert_rejected(Location, location(id="LOCé"), "id")
    Location.from_wire(location(city="Köln"))


def test_codes() -> None:
    assert_rejected(Location, location(country="BE"), "country")
    assert_rejected(Location, location(country_code="BEL"), "country_code")
    assert_rejected(Location, location(party_id="BE"), "party_id")


# --- enums -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("evses.0.status", "available"),
        ("evses.0.connectors.0.standard", "iec_62196_t2"),
        ("evses.0.connectors.0.format", "Socket"),
        ("evses.0.connectors.0.power_type", "ac_3_phase"),
        ("evses.0.capabilities", ["reservable"]),
        ("parking_type", "on_street"),
        ("facilities", ["Wifi"]),
        ("evses.0.parking_restrictions", ["ev_only"]),
        ("evses.0.status", "OUT_OF_ORDER"),
    ],
)
def test_enum_values_are_case_sensitive(path: str, value: Any) -> None:
    expected = path + ".0" if isinstance(value, list) else path
    assert_rejected(Location, set_path(LOCATION, path, value), expected)


# --- DateTime ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2019-06-24T12:39:09+00:00", "2019-06-24T14:39:09+02:00", "2019-06-24 12:39:09Z", "2019-06-24", "24-06-2019T12:39:09Z", "2019-02-30T12:00:00Z"])
def test_bad_datetime(text: str) -> None:
    assert_rejected(Location, location(last_updated=text), "last_updated")
    assert_rejected(Location, set_path(LOCATION, "evses.0.connectors.0.last_updated", text), "evses.0.connectors.0.last_updated")


def test_datetime_without_z_is_utc_and_fractions_are_accepted() -> None:
    a = Location.from_wire(location(last_updated="2019-06-24T12:39:09"))
    b = Location.from_wire(location(last_updated="2019-06-24T12:39:09Z"))
    assert a.last_updated == b.last_updated and a.last_updated.utcoffset().total_seconds() == 0
    assert json.loads(a.to_json_bytes())["last_updated"] == "2019-06-24T12:39:09Z"
    c = Location.from_wire(location(last_updated="2016-12-29T17:45:09.2"))
    assert json.loads(c.to_json_bytes())["last_updated"] == "2016-12-29T17:45:09.2Z"


# --- GeoLocation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [("51.047599", "3.729944"), ("-51.04759", "-126.104965"), ("0.00000", "180.0000000"), ("5.1234567", "-12.1234567")],
)
def test_geolocation_valid(latitude: str, longitude: str) -> None:
    GeoLocation.from_wire({"latitude": latitude, "longitude": longitude})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latitude", "51.0475"),  # fewer than 5 decimals
        ("latitude", "51,047599"),
        ("latitude", "151.047599"),
        ("latitude", "51.04759901"),
        ("latitude", "+51.047599"),
        ("latitude", " 51.047599"),
        ("longitude", "3.7299"),
        ("longitude", "1234.729944"),
        ("longitude", "3"),
    ],
)
def test_geolocation_pattern(field: str, value: str) -> None:
    coords = {"latitude": "51.047599", "longitude": "3.729944", field: value}
    assert_rejected(Location, location(coordinates=coords), f"coordinates.{field}")
    assert_rejected(AdditionalGeoLocation, coords, field)


# --- cross-field rules ---------------------------------------------------------------------


def test_publish_token_needs_an_identifier() -> None:
    text = assert_rejected(PublishTokenType, {"type": "RFID", "issuer": "X"}, "uid")
    assert "visual_number" in text and "group_id" in text
    PublishTokenType.from_wire({"group_id": "G1"})


def test_publish_token_uid_needs_type() -> None:
    assert_rejected(PublishTokenType, {"uid": "123"}, "type")
    # Named inside a Location too, under the entry's position.
    text = assert_rejected(Location, location(publish=False, publish_allowed_to=[{"group_id": "G"}, {"uid": "1"}]), "publish_allowed_to.1")
    assert "type" in text


def test_publish_token_visual_number_needs_issuer() -> None:
    assert_rejected(PublishTokenType, {"visual_number": "12345-67"}, "issuer")
    PublishTokenType.from_wire({"visual_number": "12345-67", "issuer": "NewMotion"})


def test_hours_regular_hours_required_unless_24_7() -> None:
    assert_rejected(Hours, {"twentyfourseven": False}, "regular_hours")
    assert_rejected(Hours, {"twentyfourseven": False, "regular_hours": []}, "regular_hours")
    assert_rejected(Location, location(opening_times={"twentyfourseven": False}), "opening_times")
    Hours.from_wire({"twentyfourseven": True})
    assert_rejected(Hours, {"twentyfourseven": "false", "regular_hours": []}, "twentyfourseven")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weekday": 0}, "weekday"),
        ({"weekday": 8}, "weekday"),
        ({"weekday": "1"}, "weekday"),
        ({"period_begin": "8:00"}, "period_begin"),
        ({"period_end": "24:00"}, "period_end"),
        ({"period_end": "20:60"}, "period_end"),
        ({"period_begin": "20:00", "period_end": "08:00"}, "period_end"),
        ({"period_begin": "08:00", "period_end": "08:00"}, "period_end"),
    ],
)
def test_regular_hours(changes: dict[str, Any], field: str) -> None:
    base = {"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}
    RegularHours.from_wire(base)
    assert_rejected(RegularHours, {**base, **changes}, field)


def test_exceptional_period_and_status_schedule() -> None:
    hours = {"twentyfourseven": True, "exceptional_closings": [{"period_begin": "2018-12-25T03:00:00Z"}]}
    assert_rejected(Hours, hours, "exceptional_closings.0.period_end")
    StatusSchedule.from_wire({"period_begin": "2018-12-25T03:00:00Z", "status": "PLANNED"})
    assert_rejected(StatusSchedule, {"period_begin": "2018-12-25T03:00:00+01:00", "status": "PLANNED"}, "period_begin")


# --- unknown fields ---------------------------------------------------------------------------


def test_unknown_fields_in_nested_objects_are_collected_and_dropped() -> None:
    d = location(vendor_x=1)
    d["evses"][0]["floor"] = -1
    d["evses"][0]["connectors"][0]["x_plug_colour"] = "blue"
    d["coordinates"]["altitude"] = "12"
    unknown: set[str] = set()
    loc = Location.from_wire(json.dumps(d), unknown=unknown)
    assert unknown == {"Location.vendor_x", "EVSE.floor", "Connector.x_plug_colour", "GeoLocation.altitude"}
    out = loc.to_json_bytes()
    for key in (b"vendor_x", b"floor", b"x_plug_colour", b"altitude"):
        assert key not in out
    # Without a sink they are dropped silently.
    assert Location.from_wire(d).to_json_bytes() == out
