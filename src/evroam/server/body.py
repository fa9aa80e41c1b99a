"""Parsing request bodies into OCPI objects.

Bodies are parsed by hand (not FastAPI body parameters) so that broken JSON
answers HTTP 400 while an invalid object answers 2001, and so each body is
validated exactly once, by pydantic-core straight from bytes.
"""

from __future__ import annotations

from typing import TypeVar

import structlog
from fastapi import Request

from evroam.ocpi.base import OcpiModel

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=OcpiModel)


class UnknownFieldLog:
    """Logs each unknown field once per partner, not once per request: partners
    on newer versions send the same extra fields on every call."""

    def __init__(self, limit: int = 10000) -> None:
        self._seen: set[tuple[int | None, str]] = set()
        self._limit = limit

    def note(self, party_id: int | None, fields: set[str], partner: str | None = None) -> list[str]:
        new = sorted(f for f in fields if (party_id, f) not in self._seen)
        if new and len(self._seen) < self._limit:
            self._seen.update((party_id, f) for f in new)
            log.info("ocpi.unknown_fields_ignored", partner=partner, fields=new)
        return new


async def parse_body(request: Request, model: type[M]) -> M:
    unknown: set[str] = set()
    obj = model.from_wire(await request.body(), unknown=unknown)
    if unknown:
        request.app.state.unknown_fields.note(getattr(request.state, "party_id", None), unknown,
                                              getattr(request.state, "party_name", None))
    return obj
