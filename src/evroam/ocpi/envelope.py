"""The response envelope (transport_and_format.asciidoc, "Response format")."""

from __future__ import annotations

from typing import Any

from pydantic import Field, JsonValue

from evroam.ocpi.base import OcpiModel, dumps
from evroam.ocpi.types import DateTime, String, format_datetime, utcnow


class Envelope(OcpiModel):
    # `data` is parsed loosely here and validated by the caller against the
    # module's own model, so one bad object can be reported precisely.
    data: JsonValue = None
    status_code: int = Field(ge=1000, le=9999, strict=True)
    status_message: String() | None = None
    timestamp: DateTime


def envelope_bytes(data_json: bytes | None, status_code: int = 1000, status_message: str | None = None) -> bytes:
    """Assemble the envelope around an already-serialised `data`, so the hot
    path serialises each object exactly once."""
    parts = [b"{"]
    if data_json is not None:
        parts += [b'"data":', data_json, b","]
    parts.append(b'"status_code":%d,' % status_code)
    if status_message is not None:
        parts += [b'"status_message":', dumps(status_message), b","]
    parts += [b'"timestamp":"', format_datetime(utcnow()).encode(), b'"}']
    return b"".join(parts)


def envelope_for(data: Any = None, status_code: int = 1000, status_message: str | None = None) -> bytes:
    return envelope_bytes(None if data is None else dumps(data), status_code, status_message)
