"""Helpers shared by the model tests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from evroam.ocpi.base import OcpiModel, error_text


def drop(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def assert_rejected(model: type[OcpiModel], data: Any, field: str) -> str:
    """Refused both as parsed JSON and as raw bytes, with `field` named in the
    error text (as a whole dotted path, not inside a longer name)."""
    texts = []
    for wire in (data, json.dumps(data)):
        with pytest.raises(ValidationError) as exc:
            model.from_wire(wire)
        texts.append(error_text(exc.value))
    for text in texts:
        assert re.search(rf"(?<![\w.]){re.escape(field)}(?!\w)", text), text
    return texts[0]
