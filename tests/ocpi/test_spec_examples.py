"""Every example JSON file of the specification, against our models.

The mapping follows ../shared/ocpi-notes.md, section H: complete objects must
parse, the known-bad ones must be refused with the failing field named,
envelopes and wrappers are opened, and PATCH fragments are checked field by
field (a fragment is not a complete object). A file without a mapping fails.
"""

from __future__ import annotations

import importlib
import json
import re
import typing
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from evroam.ocpi.base import OcpiModel, error_text
from tests.examples import EXAMPLES, load_example, spec_examples_dir


@dataclass(frozen=True)
class Valid:
    model: str


@dataclass(frozen=True)
class Invalid:
    model: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ListOf:
    model: str


@dataclass(frozen=True)
class Envelope:
    model: str
    many: bool = False


@dataclass(frozen=True)
class Wrapper:
    key: str
    model: str


@dataclass(frozen=True)
class Fragment:
    model: str


Case = Valid | Invalid | ListOf | Envelope | Wrapper | Fragment

LOCATION = "evroam.ocpi.locations:Location"
EVSE = "evroam.ocpi.locations:EVSE"
CONNECTOR = "evroam.ocpi.locations:Connector"
HOURS = "evroam.ocpi.locations:Hours"
ENERGY_MIX = "evroam.ocpi.locations:EnergyMix"
TOKEN = "evroam.ocpi.tokens:Token"
TARIFF = "evroam.ocpi.tariffs:Tariff"
SESSION = "evroam.ocpi.sessions:Session"
CDR = "evroam.ocpi.cdrs:CDR"
CREDENTIALS = "evroam.ocpi.credentials:Credentials"
VERSION = "evroam.ocpi.versions:Version"
VERSION_DETAILS = "evroam.ocpi.versions:VersionDetails"
DISPLAY_TEXT = "evroam.ocpi.common:DisplayText"
TERMINAL = "evroam.ocpi.payments:Terminal"
TERMINAL_ACTIVATION = "evroam.ocpi.payments:TerminalActivation"
FAC = "evroam.ocpi.payments:FinancialAdviceConfirmation"

_TARIFFS = [
    "tariff_1_simple_2hour",
    "tariff_2_alt_text",
    "tariff_3_alt_url",
    "tariff_4_complex",
    "tariff_5_free_of_charge",
    "tariff_6_025kwh_start_max_price",
    "tariff_7_first_hour_kwh_free",  # valid schema, wrong semantics
    "tariff_8_simple_025kwh",
    "tariff_9_025kwh_start",
    "tariff_10_025kwh_parking_start",
    "tariff_11_not_possible_alt_text",
    "tariff_12_025kwh_min_price",
    "tariff_13_simple_3hour_5parking",
    "tariff_14_step_size",
    "tariff_15_reservation_5_euro_per_hour",
    "tariff_16_reservation_2_euro_fee_5_euro_per_hour",
    "tariff_17_reservation_with_expire_fee",
    "tariff_18_reservation_with_expire_time",
    "tariffrestriction_example_max_duration",
    "tariffrestriction_example_max_power",
]

CASES: dict[str, dict[str, Case]] = {
    "2.2.1": {
        **{f"credentials_example{s}.json": Valid(CREDENTIALS) for s in ("", "2", "3", "4")},
        **{
            f"location_example{s}.json": Valid(LOCATION)
            for s in (
                "",
                "_parking_garage_opening_hours",
                "_uc2_destination_charger",
                "_uc3_destination_charger_not_published",
                "_uc4_limited_visibility",
                "_uc5_home_charge_point",
            )
        },
        "location_hours_247_open_exception_closing.json": Valid(HOURS),
        "location_hours_opening_hours_with_exceptional_closing.json": Valid(HOURS),
        "location_hours_opening_hours_with_exceptional_opening.json": Valid(HOURS),
        **{f"{name}.json": Valid(TARIFF) for name in _TARIFFS},
        "token_example_1_app_user.json": Valid(TOKEN),
        "token_example_2_full_rfid.json": Valid(TOKEN),
        "token_put_example.json": Valid(TOKEN),
        "versions_info_example.json": ListOf(VERSION),
        "version_details_example.json": Valid(VERSION_DETAILS),
        "version_details_example2.json": Valid(VERSION_DETAILS),
        "transport_and_format_get_token_example.json": Envelope(TOKEN),
        "transport_and_format_get_token_list_example.json": Envelope(TOKEN, many=True),
        "transport_and_format_version_details_example.json": Envelope(VERSION_DETAILS),
        "transport_and_format_version_info_example.json": Envelope(VERSION, many=True),
        "type_displaytext_example.json": Valid(DISPLAY_TEXT),
        # PATCH bodies.
        "location_patch_example_location.json": Fragment(LOCATION),
        "location_patch_example_remove_evse.json": Fragment(EVSE),
        "location_patch_example_status.json": Fragment(EVSE),
        "location_patch_example_tariff.json": Fragment(CONNECTOR),
        "session_patch_example_charging_period.json": Fragment(SESSION),
        "session_patch_example_total_cost.json": Fragment(SESSION),
        "token_patch_example.json": Fragment(TOKEN),
        # Wrappers around a class.
        "location_energymix_example_complete.json": Wrapper("energy_mix", ENERGY_MIX),
        "location_energymix_example_energy_provider.json": Wrapper("energy_mix", ENERGY_MIX),
        "location_energymix_example_simple.json": Wrapper("energy_mix", ENERGY_MIX),
        "location_regularhours_example.json": Wrapper("opening_times", HOURS),
        # Not valid under a strict 2.2.1 reading.
        "cdr_example.json": Invalid(CDR, ("cdr_token.country_code", "cdr_token.party_id")),
        "session_example_1_simple_start.json": Invalid(SESSION, ("cdr_token.country_code", "cdr_token.party_id")),
        "session_example_2_short_finished.json": Invalid(SESSION, ("cdr_token.country_code", "cdr_token.party_id")),
        "location_put_example_add_evse.json": Invalid(
            EVSE,
            (
                "connectors.0.power_type",
                "connectors.0.max_voltage",
                "connectors.0.max_amperage",
                "connectors.0.last_updated",
                "physical_reference",
            ),
        ),
        "tariff_put_example.json": Invalid(TARIFF, ("last_updated",)),
    },
    "2.3.0-payments": {
        "payment_terminal_create.json": Valid(TERMINAL),
        "payment_terminal_example_newly_created.json": Valid(TERMINAL),
        "payment_terminal_example_assigned_locations.json": Valid(TERMINAL),
        "payment_terminal_example_assigned_locations_assigned_evses.json": Valid(TERMINAL),
        "payment_terminal_activate.json": Valid(TERMINAL_ACTIVATION),
        "payment_financial_advice_confirmation_create.json": Valid(FAC),
        "payment_financial_advice_confirmation_example_success.json": Valid(FAC),
        "payment_terminal_location_assignment.json": Fragment(TERMINAL),
        "payment_terminal_create_minimal.json": Invalid(TERMINAL, ("last_updated",)),
        "payment_financial_advice_confirmation_example_failure.json": Invalid(FAC, ("eft_data",)),
        # Sent as a PUT (a whole Terminal) but partial: no terminal_id. Its
        # "someNewURL" passes our URL type, which checks characters only.
        "payment_terminal_put_update.json": Invalid(TERMINAL, ("terminal_id",)),
    },
}

PARAMS = [pytest.param(release, name, case, id=f"{release}/{name}") for release, files in CASES.items() for name, case in files.items()]


def resolve(ref: str) -> type[OcpiModel]:
    module_name, cls_name = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        pytest.skip(f"{module_name} is not written yet")
    return getattr(module, cls_name)


def parse_clean(model: type[OcpiModel], data: Any) -> OcpiModel:
    """Parse as a dict and as JSON text; a spec example must not need unknown fields."""
    unknown: set[str] = set()
    obj = model.from_wire(data, unknown=unknown)
    assert unknown == set(), f"fields unknown to our {model.__name__}: {sorted(unknown)}"
    assert model.from_wire(json.dumps(data)) == obj
    return obj


def check_fragment(model: type[OcpiModel], data: Any) -> None:
    assert isinstance(data, dict) and data
    assert data.keys() <= model.model_fields.keys(), sorted(data.keys() - model.model_fields.keys())
    with pytest.raises(ValidationError):
        model.from_wire(data)
    # Each field given must still be valid on its own.
    for key, value in data.items():
        field = model.model_fields[key]
        tp = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        TypeAdapter(tp).validate_python(value)


def test_every_example_file_is_mapped() -> None:
    for release, files in CASES.items():
        folder = spec_examples_dir(release)
        present = {p.name for p in folder.glob("*.json")}
        assert present - files.keys() == set(), f"{release}: unmapped example files"
        assert files.keys() - present == set(), f"{release}: mapped files that do not exist"


def test_no_other_example_folders() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"spec examples not found at {EXAMPLES}")
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == CASES.keys()


@pytest.mark.parametrize(("release", "name", "case"), PARAMS)
def test_example(release: str, name: str, case: Case) -> None:
    data = load_example(name, release)
    model = resolve(case.model)
    match case:
        case Valid():
            parse_clean(model, data)
        case ListOf():
            assert isinstance(data, list) and data
            for item in data:
                parse_clean(model, item)
        case Envelope(many=many):
            assert data.keys() >= {"data", "status_code", "timestamp"}
            assert isinstance(data["status_code"], int) and 1000 <= data["status_code"] <= 4999
            items = data["data"] if many else [data["data"]]
            assert isinstance(items, list) and items
            for item in items:
                parse_clean(model, item)
        case Wrapper(key=key):
            assert list(data) == [key]
            parse_clean(model, data[key])
        case Fragment():
            check_fragment(model, data)
        case Invalid(fields=fields):
            with pytest.raises(ValidationError) as exc:
                model.from_wire(data)
            text = error_text(exc.value)
            for field in fields:
                assert re.search(rf"(?<![\w.]){re.escape(field)}(?!\w)", text), text
        case _:
            raise AssertionError(case)
