"""Every error case of the handshake, in both directions (credentials.asciidoc,
status_codes.asciidoc: 3001, 3002, 3003)."""

from __future__ import annotations

import pytest

from evroam.modules.credentials.handshake import HandshakeError
from tests.fakes import FakePartner
from tests.nodes import bind_loopback
from tests.ocpi_calls import call
from tests.partners import CPO, EMSP, party_named


def creds_body(url: str, token: str = "tok-b") -> dict:
    return {"token": token, "url": url,
            "roles": [{"role": "EMSP", "party_id": "EMS", "country_code": "DE", "business_details": {"name": "e"}}]}


# --- we register with them ---------------------------------------------------------


async def test_register_unreachable_partner_is_3001(cluster):
    emsp = await cluster.node("emsp", EMSP)
    dead = bind_loopback()
    url = f"http://127.0.0.1:{dead.getsockname()[1]}/ocpi/versions"
    dead.close()
    with pytest.raises(HandshakeError) as ei:
        await emsp.handshake.register(url, "token-a")
    assert ei.value.status_code == 3001
    async with emsp.engine.connect() as conn:
        from evroam.store import parties as repo
        assert await repo.list_all(conn) == []


async def test_register_no_common_version_is_3002(cluster):
    emsp = await cluster.node("emsp", EMSP)
    async with FakePartner(versions=["2.1.1", "2.0"]) as fake:
        with pytest.raises(HandshakeError) as ei:
            await emsp.handshake.register(fake.versions_url, "token-a")
    assert ei.value.status_code == 3002
    assert "2.1.1" in ei.value.message
    assert ("POST", "/2.2.1/credentials") not in fake.calls


async def test_register_missing_endpoints_is_3003_and_nothing_posted(cluster):
    emsp = await cluster.node("emsp", EMSP)
    async with FakePartner(modules=["locations"]) as fake:
        with pytest.raises(HandshakeError) as ei:
            await emsp.handshake.register(fake.versions_url, "token-a")
    assert ei.value.status_code == 3003
    assert "credentials" in ei.value.message
    assert [m for m, _ in fake.calls] == ["GET", "GET"]


async def test_register_bad_token_a_is_reported(cluster):
    cpo = await cluster.node("cpo", CPO)
    emsp = await cluster.node("emsp", EMSP)
    await cpo.handshake.invite("emsp")
    with pytest.raises(HandshakeError) as ei:
        await emsp.handshake.register(cpo.config.versions_url, "wrong-token")
    assert ei.value.status_code == 3001
    assert "401" in ei.value.message


async def test_partner_cannot_call_us_back_is_3001(cluster):
    """We register but do not serve: the partner's callback with token B fails,
    it answers 3001, and both sides keep nothing."""
    cpo = await cluster.node("cpo", CPO)
    emsp = await cluster.node("emsp", EMSP, serve=False)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    with pytest.raises(HandshakeError) as ei:
        await emsp.handshake.register(versions_url, token_a)
    assert ei.value.status_code == 3001
    assert (await party_named(cpo, "emsp")).status == "INVITED"
    # Token A is still usable for a retry.
    status, body, _ = await call("GET", cpo.config.versions_url, token_a)
    assert (status, body["status_code"]) == (200, 1000)


# --- they register with us --------------------------------------------------------------


async def test_inbound_unreachable_is_3001_and_writes_nothing(cluster):
    cpo = await cluster.node("cpo", CPO)
    token_a, _ = await cpo.handshake.invite("emsp")
    dead = bind_loopback()
    url = f"http://127.0.0.1:{dead.getsockname()[1]}/versions"
    dead.close()
    status, body, _ = await call("POST", f"{cpo.config.public_url}/ocpi/2.2.1/credentials", token_a, creds_body(url))
    assert (status, body["status_code"]) == (200, 3001)
    assert "versions" in body["status_message"]
    party = await party_named(cpo, "emsp")
    assert party.status == "INVITED" and party.token_out is None


async def test_inbound_no_common_version_is_3002(cluster):
    cpo = await cluster.node("cpo", CPO)
    token_a, _ = await cpo.handshake.invite("emsp")
    async with FakePartner(versions=["2.1.1"]) as fake:
        status, body, _ = await call("POST", f"{cpo.config.public_url}/ocpi/2.2.1/credentials", token_a,
                                     creds_body(fake.versions_url))
    assert (status, body["status_code"]) == (200, 3002)
    assert (await party_named(cpo, "emsp")).status == "INVITED"


async def test_inbound_missing_endpoints_is_3003(cluster):
    cpo = await cluster.node("cpo", CPO)
    token_a, _ = await cpo.handshake.invite("emsp")
    async with FakePartner(modules=["tokens"]) as fake:
        status, body, _ = await call("POST", f"{cpo.config.public_url}/ocpi/2.2.1/credentials", token_a,
                                     creds_body(fake.versions_url))
        # The callbacks used token B from the body, before we answered.
        assert fake.calls == [("GET", "/versions"), ("GET", "/2.2.1")]
    assert (status, body["status_code"]) == (200, 3003)
    assert (await party_named(cpo, "emsp")).status == "INVITED"


async def test_rotate_unknown_or_unregistered_partner(cluster):
    cpo = await cluster.node("cpo", CPO)
    with pytest.raises(HandshakeError, match="no partner"):
        await cpo.handshake.rotate("nobody")
    await cpo.handshake.invite("later")
    with pytest.raises(HandshakeError, match="not registered"):
        await cpo.handshake.rotate("later")
