"""CDRs, Sender interface (the CPO): GET the list, only the caller's own CDRs."""

from __future__ import annotations


from fastapi import APIRouter, Request

from evroam.modules.cdrs import MODULE as CDRS
from evroam.server.objects import own_list


router = APIRouter()


# --- Sender (CPO) -----------------------------------------------------------------------


@router.get("")
async def get_cdrs(request: Request):
    return await own_list(request, CDRS)
