"""Tariffs, Sender interface (the CPO): GET the list of our Tariffs (paginated)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from evroam.modules.tariffs import MODULE as TARIFFS
from evroam.server import objects as common

router = APIRouter()


@router.get("")
async def get_tariffs(request: Request):
    return await common.sender_list(request, TARIFFS)
