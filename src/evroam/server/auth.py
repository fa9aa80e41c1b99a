"""Authentication of partners by their credentials token."""

from __future__ import annotations

from fastapi import Request

from evroam.ocpi.headers import parse_authorization
from evroam.ocpi.status import unauthorized
from evroam.store import parties as repo
from evroam.store.parties import Authenticated


async def authenticate(request: Request) -> Authenticated:
    """Any token we issued: A, pending or active. For versions and credentials."""
    decoded, raw = parse_authorization(request.headers.get("authorization"))
    if decoded is None and raw is None:
        raise unauthorized("missing or malformed Authorization header (expected `Token <base64 token>`)")
    engine = request.app.state.engine
    async with engine.connect() as conn:
        auth = await repo.authenticate(conn, decoded, raw)
    if auth is None:
        raise unauthorized("unknown credentials token")
    request.state.party_id = auth.party.id
    request.state.party_name = auth.party.name  # for logs: operators know partners by name
    request.state.token = decoded if auth.token_hash == repo.hash_token(decoded or "") else raw
    return auth


async def authenticate_registered(request: Request) -> Authenticated:
    """Functional modules: token A never opens them (only versions and credentials)."""
    auth = await authenticate(request)
    if auth.token_kind == repo.TOKEN_A or auth.party.status != repo.REGISTERED:
        raise unauthorized("this token is only valid for registration (versions and credentials)")
    return auth
