"""Authentication of partners by their credentials token."""

from __future__ import annotations

from fastapi import Request

from evroam.ocpi.headers import parse_authorization
from evroam.ocpi.status import OcpiError, unauthorized
from evroam.server import routing
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
    """Functional modules: token A never opens them (only versions and credentials).

    Kept on the request, so a route that must authenticate before it judges
    its parameters (a stranger gets 401, not 2001) costs no second lookup."""
    known = getattr(request.state, "registered", None)
    if known is not None:
        return known
    auth = await authenticate(request)
    if auth.token_kind == repo.TOKEN_A or auth.party.status != repo.REGISTERED:
        raise unauthorized("this token is only valid for registration (versions and credentials)")
    routing.note(request, auth.party)
    request.state.registered = auth
    return auth


async def note_routing_of_error(request: Request) -> None:
    """An error on a functional path raised before its handler authenticated
    (no such route, a method it lacks, a bad parameter): its answer still
    carries routing headers, if the caller turns out to be a registered
    partner. Anyone else learns nothing more than before."""
    if hasattr(request.state, "routing") or routing.interface_of(request.url.path) is None:
        return
    try:
        auth = await authenticate(request)
    except OcpiError:
        return
    if auth.token_kind != repo.TOKEN_A and auth.party.status == repo.REGISTERED:
        try:
            routing.note(request, auth.party)
        except OcpiError:
            pass  # the error being answered comes first
