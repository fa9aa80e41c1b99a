"""Admin routes that read partners and what they sent us."""

from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from evroam.admin import answers, bad_request, node_of, not_found, ok
from evroam.ocpi.base import dumps
from evroam.module import REGISTRY
from evroam.ocpi.types import ci_key, format_datetime, parse_datetime
from evroam.store import objects as repo
from evroam.store import parties as party_repo
from evroam.store.parties import Party
from evroam.store.tables import OURS, objects, outbox
from evroam.sync.lag import health

router = APIRouter()

MAX_LIMIT = 1000


def _summary(p: Party) -> dict:
    return {"name": p.name, "status": p.status, "version": p.version, "versions_url": p.versions_url,
            "initiated_by_us": p.initiated_by_us, "roles": p.roles or [],
            "endpoints": p.endpoints or []}


async def _party(request: Request, name: str) -> Party:
    async with node_of(request).engine.connect() as conn:
        party = await party_repo.by_name(conn, name)
    if party is None:
        raise not_found(f"no partner named {name!r}")
    return party


@router.get("/partners", summary="Partners with their sync health")
async def list_partners(request: Request) -> Response:
    engine = node_of(request).engine
    async with engine.connect() as conn:
        parties = {p.id: p for p in await party_repo.list_all(conn)}
    rows = await health(engine)
    return ok([{**_summary(parties[h.party_id]), "sync": _sync(h.to_json())} for h in rows if h.party_id in parties])


def _sync(h: dict) -> dict:
    return {k: h[k] for k in ("pending", "dead", "lag_s", "oldest_pending_at", "pulls")}


@router.get("/partners/{name}", summary="One partner: registration, endpoints, sync health, dead letters",
            responses=answers(404))
async def get_partner(request: Request, name: str) -> Response:
    party = await _party(request, name)
    engine = node_of(request).engine
    (h,) = await health(engine, party.id)
    async with engine.connect() as conn:
        dead = (await conn.execute(
            sa.select(outbox.c.module, outbox.c.method, outbox.c.attempts, outbox.c.last_error,
                      outbox.c.updated_at, objects.c.oid_key)
            .join_from(outbox, objects, outbox.c.object_pk == objects.c.id)
            .where(outbox.c.party_id == party.id, outbox.c.status == "DEAD")
            .order_by(outbox.c.updated_at.desc()).limit(20))).all()
    sync = _sync(h.to_json())
    sync["dead_letters"] = [{"module": r.module, "object_id": r.oid_key, "method": r.method,
                             "attempts": r.attempts, "last_error": r.last_error, "at": format_datetime(r.updated_at)}
                            for r in dead]
    return ok({**_summary(party), "sync": sync})


@router.get("/partners/{name}/{module}", summary="Objects of one module received from a partner (paginated)",
            responses=answers(400, 404))
async def list_received(
    request: Request, name: str, module: str,
    offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=MAX_LIMIT),
    date_from: str | None = Query(None, description="last_updated ≥ this (inclusive)"),
    date_to: str | None = Query(None, description="last_updated < this (exclusive)"),
    include_stale: bool = Query(True, description="Also objects a full pull no longer returned."),
) -> Response:
    if module not in REGISTRY.objects():
        raise not_found(f"unknown module {module!r}; one of {', '.join(REGISTRY.objects())}")
    party = await _party(request, name)
    dates = {}
    for field, raw in (("date_from", date_from), ("date_to", date_to)):
        if raw:
            try:
                dates[field] = parse_datetime(raw)
            except ValueError as exc:
                raise bad_request(f"{field}: {exc}") from None
    async with node_of(request).engine.connect() as conn:
        docs, total = await repo.page(conn, module, party.id, offset=offset, limit=limit,
                                      include_stale=include_stale, **dates)
    headers = {"X-Total-Count": str(total), "X-Limit": str(limit)}
    if offset + limit < total:
        query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
        query += [("offset", str(offset + limit)), ("limit", str(limit))]
        headers["Link"] = f'<{request.url.replace(query=urlencode(query))}>; rel="next"'
    return ok(data_json=repo.splice(docs), headers=headers)


@router.get("/received/{module}/{country_code}/{party_id}/{object_id}",
            summary="One object a partner sent us, by its OCPI keys", responses=answers(404))
async def get_received(request: Request, module: str, country_code: str, party_id: str, object_id: str,
                       type: str | None = Query(None, description="Tokens only: the token type.")) -> Response:
    if module not in REGISTRY.objects():
        raise not_found(f"unknown module {module!r}; one of {', '.join(REGISTRY.objects())}")
    conds = [objects.c.module == module, objects.c.owner_id != OURS, objects.c.cc_key == ci_key(country_code),
             objects.c.pid_key == ci_key(party_id), objects.c.oid_key == ci_key(object_id)]
    if type:
        conds.append(objects.c.type_key == type)
    async with node_of(request).engine.connect() as conn:
        # The same keys could come from two partners (e.g. directly and via a hub): newest first.
        row = (await conn.execute(
            sa.select(objects.c.data, objects.c.stale, objects.c.status, objects.c.note, objects.c.owner_id)
            .where(*conds).order_by(objects.c.last_updated.desc(), objects.c.id.desc()).limit(1))).first()
        party = await party_repo.get(conn, row.owner_id) if row else None
    if row is None:
        raise not_found(f"nothing received for {module} {country_code}/{party_id}/{object_id}")
    meta = dumps({"partner": party.name if party else None, "stale": row.stale, "status": row.status,
                  "note": row.note})
    # Splice the stored document in rather than parse it again.
    return ok(data_json=meta[:-1] + b',"object":' + row.data.encode() + b"}")
