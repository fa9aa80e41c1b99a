"""Tariffs, Receiver interface (the eMSP): GET, PUT and DELETE at
/{country_code}/{party_id}/{tariff_id}. The only module with a Receiver DELETE.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from evroam.modules.tariffs import MODULE as TARIFFS
from evroam.server import objects as common
from evroam.server import writes

router = APIRouter()


@router.get("/{country_code}/{party_id}/{tariff_id}")
async def get_tariff(request: Request, country_code: str, party_id: str, tariff_id: str):
    return await common.receiver_get(request, TARIFFS, country_code, party_id, tariff_id)


@router.put("/{country_code}/{party_id}/{tariff_id}")
async def put_tariff(request: Request, country_code: str, party_id: str, tariff_id: str):
    return await writes.receiver_put(request, TARIFFS, country_code, party_id, tariff_id)


@router.delete("/{country_code}/{party_id}/{tariff_id}")
async def delete_tariff(request: Request, country_code: str, party_id: str, tariff_id: str):
    return await writes.receiver_delete(request, TARIFFS, country_code, party_id, tariff_id)
