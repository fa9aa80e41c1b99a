"""Versions module: the versions list and the 2.2.1 version details."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from evroam.ocpi.versions import Endpoint, InterfaceRole, Version, VersionDetails, VersionNumber
from evroam.server.auth import authenticate
from evroam.server.context import ServerContext
from evroam.server.responses import ocpi_response

router = APIRouter()

V = VersionNumber.V2_2_1.value


def version_details(ctx: ServerContext) -> VersionDetails:
    # The credentials endpoint's role is meaningless; it is listed once.
    endpoints = [Endpoint(identifier="credentials", role=InterfaceRole.SENDER,
                          url=ctx.endpoint_url("ocpi", V, "credentials"))]
    endpoints += ctx.endpoints
    return VersionDetails(version=VersionNumber.V2_2_1, endpoints=endpoints)


@router.get("/ocpi/versions", dependencies=[Depends(authenticate)])
async def get_versions(request: Request):
    ctx: ServerContext = request.app.state.ctx
    return ocpi_response([Version(version=VersionNumber.V2_2_1, url=ctx.endpoint_url("ocpi", V))])


@router.get(f"/ocpi/{V}", dependencies=[Depends(authenticate)])
async def get_version_details(request: Request):
    return ocpi_response(version_details(request.app.state.ctx))
