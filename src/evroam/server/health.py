"""Probes for an orchestrator (Docker, Kubernetes, systemd, a load balancer).

`GET /health`: the process is up and answers HTTP. `GET /ready`: the
database answers and carries exactly the migrations this code ships, so the
node can serve partners. Neither needs a token (a probe has none), neither is
OCPI (they are kept out of the call log by living outside /ocpi), and they
say nothing a stranger could use beyond the migration number.
"""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from evroam.store.db import applied_revision, head_revision

log = structlog.get_logger(__name__)

router = APIRouter()

PATHS = ("/health", "/ready")
# A probe that hangs is worse than one that fails: orchestrators time out
# around 1-10 s and then count it as a failure anyway, without our reason.
READY_TIMEOUT_S = 3.0
_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/health", include_in_schema=False)
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@router.get("/ready", include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    expected = head_revision()
    try:
        applied = await asyncio.wait_for(applied_revision(request.app.state.engine), READY_TIMEOUT_S)
    except Exception as exc:
        error = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        _note(request, False, database="unreachable", error=error)
        return JSONResponse({"status": "not_ready", "database": "unreachable", "error": error}, 503,
                            headers=_NO_STORE)
    if applied != expected:
        _note(request, False, database="ok", migration=applied, expected_migration=expected)
        return JSONResponse({"status": "not_ready", "database": "ok", "migration": applied,
                             "expected_migration": expected}, 503, headers=_NO_STORE)
    _note(request, True)
    return JSONResponse({"status": "ready", "database": "ok", "migration": applied}, headers=_NO_STORE)


def _note(request: Request, ok: bool, **why: object) -> None:
    # Probes come every few seconds: log when readiness changes, not each time.
    state = request.app.state
    if getattr(state, "ready", None) is ok:
        return
    state.ready = ok
    if ok:
        log.info("node.ready")
    else:
        log.warning("node.not_ready", **why)
