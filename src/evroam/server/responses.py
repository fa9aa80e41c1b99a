"""Building OCPI responses; every answer, errors included, is an envelope."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from evroam.ocpi.envelope import envelope_bytes
from evroam.ocpi.base import dumps


def ocpi_response(data: Any = None, *, status_code: int = 1000, status_message: str | None = None,
                  http_status: int = 200, headers: dict[str, str] | None = None,
                  data_json: bytes | None = None) -> Response:
    if data_json is None and data is not None:
        data_json = dumps(data)
    return Response(
        content=envelope_bytes(data_json, status_code, status_message),
        status_code=http_status,
        media_type="application/json",
        headers=headers,
    )
