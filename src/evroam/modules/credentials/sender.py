"""Credentials module, server side (credentials.asciidoc)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from evroam.ocpi.credentials import Credentials
from evroam.ocpi.status import method_not_allowed
from evroam.ocpi.versions import VersionNumber
from evroam.server.auth import authenticate
from evroam.server.body import parse_body
from evroam.server.context import ServerContext
from evroam.server.responses import ocpi_response
from evroam.store import parties as repo
from evroam.store.parties import Authenticated

router = APIRouter()

V = VersionNumber.V2_2_1.value
PATH = f"/ocpi/{V}/credentials"


def _registered(auth: Authenticated) -> bool:
    return auth.token_kind != repo.TOKEN_A and auth.party.status == repo.REGISTERED


async def _body(request: Request) -> Credentials:
    return await parse_body(request, Credentials)


@router.get(PATH)
async def get_credentials(request: Request, auth: Authenticated = Depends(authenticate)):
    ctx: ServerContext = request.app.state.ctx
    # The caller presented its token in this very request, so returning it
    # reveals nothing although we keep only its hash.
    return ocpi_response(ctx.credentials.our_credentials(request.state.token))


@router.post(PATH)
async def post_credentials(request: Request, auth: Authenticated = Depends(authenticate)):
    if auth.token_kind != repo.TOKEN_A:
        raise method_not_allowed("already registered: use PUT to update the credentials")
    creds = await _body(request)
    ctx: ServerContext = request.app.state.ctx
    return ocpi_response(await ctx.credentials.accept_registration(auth, creds, V))


@router.put(PATH)
async def put_credentials(request: Request, auth: Authenticated = Depends(authenticate)):
    if not _registered(auth):
        raise method_not_allowed("not registered: use POST to register first")
    creds = await _body(request)
    ctx: ServerContext = request.app.state.ctx
    return ocpi_response(await ctx.credentials.accept_update(auth, creds, V))


@router.delete(PATH)
async def delete_credentials(request: Request, auth: Authenticated = Depends(authenticate)):
    if not _registered(auth):
        raise method_not_allowed("not registered: nothing to unregister")
    ctx: ServerContext = request.app.state.ctx
    await ctx.credentials.accept_unregistration(auth)
    return ocpi_response()
