"""Credentials with the independent partner: registration both ways,
rotation and removal from either side, with the partner as CPO and as eMSP.

The library only has the receiving half of the credentials module; the
partner's initiating side (register, rotate, unregister) is our control code
in partner/app.py, built on the library's Credentials schema.
"""

from __future__ import annotations

import aiohttp
import pytest

from evroam.ocpi.headers import encode_token
from tests.interop.wire import (EVROAM_CPO, EVROAM_EMSP, PARTNER_CPO, PARTNER_EMSP, evroam_registers,
                                partner_registers)

pytestmark = pytest.mark.timeout(300)  # the first test may build the interop venv

# (partner role, evroam's roles)
ROLES = [pytest.param(PARTNER_CPO, EVROAM_EMSP, id="partner-cpo"),
         pytest.param(PARTNER_EMSP, EVROAM_CPO, id="partner-emsp")]


async def get(url: str, token: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Authorization": encode_token(token)}) as r:
            return r.status, await r.json(content_type=None)


@pytest.fixture
async def pair(evroam, partner, request):
    """(evroam node, partner, the partner as evroam holds it, the spent token A and its issuer)."""
    partner_role, our_roles, initiator = request.param
    node = await evroam.node("evroam", our_roles)
    p = await partner(*partner_role)
    if initiator == "evroam":
        party, spent = await evroam_registers(node, p), (p.versions_url, p.token_a)
    else:
        party, token_a = await partner_registers(node, p)
        spent = (node.config.versions_url, token_a)
    return node, p, party, spent


PAIRS = [pytest.param((pr.values[0], pr.values[1], who), id=f"{pr.id}-{who}-registers")
         for pr in ROLES for who in ("evroam", "partner")]


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
async def test_registration(pair):
    node, p, party, (issuer, token_a) = pair
    role, cc, pid = p.role, p.country, p.party
    assert party.status == "REGISTERED" and party.version == "2.2.1"
    # Quirk: the library lower-cases every CiString, the roles' country code and party id included.
    assert [(r["role"], r["country_code"], r["party_id"]) for r in party.roles] == [(role, cc.lower(), pid.lower())]
    state = await p.state()
    [(token_for_us, peer)] = state["peers"].items()
    # Each side can call the other with the token it was given.
    status, body = await get(p.versions_url, party.token_out)
    assert (status, body["status_code"]) == (200, 1000)
    status, body = await get(node.config.versions_url, peer["token"])
    assert (status, body["status_code"]) == (200, 1000)
    assert {e["identifier"] for e in peer["endpoints"]} >= {"credentials", "locations", "sessions", "tokens"}
    # The token A that opened the registration is spent on both sides.
    status, _ = await get(issuer, token_a)
    assert status == 401


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
async def test_rotation_by_evroam(pair):
    node, p, party, _ = pair
    old_peer = next(iter((await p.state())["peers"].values()))
    rotated = await node.handshake.rotate(party.name)
    [new_peer] = (await p.state())["peers"].values()
    assert rotated.token_out != party.token_out and new_peer["token"] != old_peer["token"]
    # Quirk: a wrong token on the partner is 403 {"detail": …}, not an OCPI envelope.
    status, body = await get(p.versions_url, party.token_out)
    assert status == 401 and body == {"detail": "Unauthorized"}
    status, body = await get(p.versions_url, rotated.token_out)
    assert (status, body["status_code"]) == (200, 1000)
    status, body = await get(node.config.versions_url, old_peer["token"])
    assert (status, body["status_code"]) == (401, 2000)
    status, body = await get(node.config.versions_url, new_peer["token"])
    assert (status, body["status_code"]) == (200, 1000)


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
async def test_rotation_by_partner(pair):
    node, p, party, _ = pair
    [old_peer] = (await p.state())["peers"].values()
    reply = await p.control("POST", "rotate")
    assert (reply["http_status"], reply["body"]["status_code"]) == (200, 1000), reply
    [new_peer] = (await p.state())["peers"].values()
    fresh = await node.party(party.name)
    assert fresh.status == "REGISTERED" and fresh.token_out != party.token_out
    status, body = await get(node.config.versions_url, old_peer["token"])
    assert (status, body["status_code"]) == (401, 2000)
    status, body = await get(node.config.versions_url, new_peer["token"])
    assert (status, body["status_code"]) == (200, 1000)
    status, _ = await get(p.versions_url, party.token_out)
    assert status == 401
    status, body = await get(p.versions_url, fresh.token_out)
    assert (status, body["status_code"]) == (200, 1000)


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
async def test_removal_by_evroam(pair):
    node, p, party, _ = pair
    [peer] = (await p.state())["peers"].values()
    assert await node.handshake.unregister(party.name) is None
    assert (await node.party(party.name)).status == "UNREGISTERED"
    assert (await p.state())["peers"] == {}
    status, _ = await get(p.versions_url, party.token_out)
    assert status == 401
    status, body = await get(node.config.versions_url, peer["token"])
    assert (status, body["status_code"]) == (401, 2000)


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
async def test_removal_by_partner(pair):
    node, p, party, _ = pair
    [peer] = (await p.state())["peers"].values()
    reply = await p.control("POST", "unregister")
    assert (reply["http_status"], reply["body"]["status_code"]) == (200, 1000), reply
    assert (await node.party(party.name)).status == "UNREGISTERED"
    status, body = await get(node.config.versions_url, peer["token"])
    assert (status, body["status_code"]) == (401, 2000)
