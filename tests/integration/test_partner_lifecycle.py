"""A partner registering again, and a partner leaving (issue 8, points 3.1 and 3.2).

Registering again with a party we already hold (same versions URL, or a
country_code/party_id in common) replaces that partner's credentials: it
keeps its name, its outbox and its sync state, and its pending deliveries
then reach the partner with the new tokens. Both directions: we POST again
(`partners register`), or they POST to us with the token A of a new invite.

Removing a partner, or the partner unregistering us, drops its deliveries,
so no lag is shown for a partner that is gone.
"""

from __future__ import annotations

import aiohttp
import sqlalchemy as sa

from evroam.ocpi.headers import encode_token
from evroam.store import outbox
from evroam.store.tables import objects
from evroam.store.tables import outbox as outbox_table
from evroam.sync.lag import health
from tests.nodes import wait_for
from tests.partners import (CPO, EMSP, outbox_rows, parties_of, party_named, received_ids, sync_modules, tariff,
                            token_kinds)


async def _versions_status(url: str, token: str) -> tuple[int, int]:
    async with aiohttp.ClientSession() as s, s.get(url, headers={"Authorization": encode_token(token)}) as r:
        return r.status, (await r.json(content_type=None))["status_code"]


async def _delivered(emsp, cpo_name: str, ids: list[str]) -> None:
    async def arrived() -> bool:
        return await received_ids(emsp, "tariffs", await party_named(emsp, cpo_name)) == ids
    await wait_for(arrived, timeout=15, what=f"tariffs {ids} at the eMSP")


async def _emsp_registered_with_idle_cpo(cluster):
    """A CPO whose deliveries wait (no workers) and an eMSP registered with it."""
    cpo = await cluster.node("cpo", CPO, run_workers=False)
    emsp = await cluster.node("emsp", EMSP)
    token_a, url = await cpo.handshake.invite("emsp")
    await emsp.handshake.register(url, token_a)
    return cpo, emsp, await party_named(cpo, "emsp")


async def test_we_register_again_with_the_same_party(cluster):
    """The CPO registers with the eMSP twice (two invites): one partner, same name and id,
    new tokens; the change queued before the second registration then arrives."""
    emsp = await cluster.node("emsp", EMSP)
    cpo = await cluster.node("cpo", CPO, run_workers=False)
    token_a, url = await emsp.handshake.invite("cpo")
    first = await cpo.handshake.register(url, token_a)
    assert first.name == "de-ems"
    await cpo.pull("de-ems", "tokens")  # sync state to keep
    await cpo.publish("tariffs", tariff("T1"))
    assert await outbox_rows(cpo) == [("PENDING", first.id)]

    token_a2, url2 = await emsp.handshake.invite("cpo-again")
    again = await cpo.handshake.register(url2, token_a2)

    assert (again.id, again.name, again.status) == (first.id, "de-ems", "REGISTERED")
    assert again.token_out != first.token_out
    assert [(p.name, p.status) for p in await parties_of(cpo)] == [("de-ems", "REGISTERED")]
    assert await token_kinds(cpo) == [(first.id, "ACTIVE")]
    assert await outbox_rows(cpo) == [("PENDING", first.id)]
    assert await sync_modules(cpo, first.id) == ["tokens"]
    # The eMSP folded the second invite into the partner it held, too.
    assert [(p.name, p.status) for p in await parties_of(emsp)] == [("cpo", "REGISTERED")]
    # The old tokens are refused both ways; the new ones work.
    assert await _versions_status(emsp.config.versions_url, first.token_out) == (401, 2000)
    assert await _versions_status(emsp.config.versions_url, again.token_out) == (200, 1000)
    old_b = (await party_named(emsp, "cpo")).token_out
    assert await _versions_status(cpo.config.versions_url, old_b) == (200, 1000)

    cpo.start_workers()
    await _delivered(emsp, "cpo", ["T1"])
    await wait_for(lambda: _no_rows(cpo), what="the CPO's outbox to empty")


async def _no_rows(node) -> bool:
    return await outbox_rows(node) == []


async def test_we_register_with_a_party_that_moved_to_a_new_url(cluster):
    """Same country_code/party_id behind a new versions URL (the partner moved
    platform): the partner we hold gets the new URL and endpoints, and its
    pending deliveries go to the new platform."""
    old_site = await cluster.node("emsp-old", EMSP)
    cpo = await cluster.node("cpo", CPO, run_workers=False)
    token_a, url = await old_site.handshake.invite("cpo")
    first = await cpo.handshake.register(url, token_a)
    await cpo.publish("tariffs", tariff("T1"))

    new_site = await cluster.node("emsp-new", EMSP)
    token_a2, url2 = await new_site.handshake.invite("cpo")
    again = await cpo.handshake.register(url2, token_a2)

    assert (again.id, again.name) == (first.id, "de-ems")
    assert again.versions_url == new_site.config.versions_url
    assert again.endpoint_url("credentials").startswith(new_site.config.public_url)
    assert [p.name for p in await parties_of(cpo)] == ["de-ems"]
    assert await outbox_rows(cpo) == [("PENDING", first.id)]
    cpo.start_workers()
    await _delivered(new_site, "cpo", ["T1"])
    assert await received_ids(old_site, "tariffs", await party_named(old_site, "cpo")) == []


async def test_they_register_again_with_a_new_invite(cluster):
    """The eMSP POSTs credentials with the token A of a second invite while it
    is registered already: the CPO keeps the partner it held (name, id,
    queued deliveries) with the new credentials, and drops the spent invite."""
    cpo, emsp, held = await _emsp_registered_with_idle_cpo(cluster)
    await cpo.publish("tariffs", tariff("T1"))
    await cpo.publish("tariffs", tariff("T2"))

    token_a2, url2 = await cpo.handshake.invite("emsp-again")
    mine = await emsp.handshake.register(url2, token_a2)

    assert mine.name == "nl-cpo"
    after = await party_named(cpo, "emsp")
    assert (after.id, after.status) == (held.id, "REGISTERED")
    assert after.token_out != held.token_out
    assert [(p.name, p.status) for p in await parties_of(cpo)] == [("emsp", "REGISTERED")]
    assert await token_kinds(cpo) == [(held.id, "ACTIVE")]
    assert await outbox_rows(cpo) == [("PENDING", held.id), ("PENDING", held.id)]
    # Token A of the second invite is spent; the eMSP's new token C works.
    assert await _versions_status(cpo.config.versions_url, token_a2) == (401, 2000)
    assert await _versions_status(cpo.config.versions_url, mine.token_out) == (200, 1000)

    cpo.start_workers()
    await _delivered(emsp, "nl-cpo", ["T1", "T2"])


async def test_remove_drops_the_partners_deliveries_and_lag(cluster):
    cpo, emsp, party = await _emsp_registered_with_idle_cpo(cluster)
    await cpo.publish("tariffs", tariff("T1"))
    await cpo.publish("tariffs", tariff("T2"))
    async with cpo.engine.begin() as conn:  # one of them dead-lettered
        first = sa.select(sa.func.min(outbox_table.c.id)).scalar_subquery()
        await conn.execute(outbox_table.update().where(outbox_table.c.id == first).values(status="DEAD"))
    [before] = await health(cpo.engine, party.id)
    assert (before.pending, before.dead) == (1, 1) and before.oldest_pending_at is not None

    assert await cpo.handshake.unregister("emsp") is None

    [after] = await health(cpo.engine, party.id)
    assert (after.status, after.pending, after.dead, after.lag_s, after.oldest_pending_at) == \
        ("UNREGISTERED", 0, 0, 0.0, None)
    assert await outbox_rows(cpo) == []


async def test_partner_unregistering_us_drops_its_deliveries(cluster):
    cpo, emsp, _ = await _emsp_registered_with_idle_cpo(cluster)
    await cpo.publish("tariffs", tariff("T1"))
    assert len(await outbox_rows(cpo)) == 1

    assert await emsp.handshake.unregister("nl-cpo") is None  # credentials DELETE to the CPO

    assert (await party_named(cpo, "emsp")).status == "UNREGISTERED"
    assert await outbox_rows(cpo) == []
    [h] = await health(cpo.engine)
    assert (h.pending, h.dead, h.lag_s) == (0, 0, 0.0)


async def test_a_delivery_queued_for_a_partner_that_left_is_dropped(cluster):
    """A publish racing the removal can queue a row after the removal dropped
    the others: the worker drops it instead of retrying it for hours."""
    cpo, emsp, party = await _emsp_registered_with_idle_cpo(cluster)
    await cpo.publish("tariffs", tariff("T1"))
    await cpo.handshake.unregister("emsp")
    async with cpo.engine.begin() as conn:
        pk = (await conn.execute(sa.select(objects.c.id).where(objects.c.module == "tariffs"))).scalar_one()
        await outbox.enqueue(conn, party.id, "tariffs", pk, "PUT")
    assert await outbox_rows(cpo) == [("PENDING", party.id)]

    assert await cpo.delivery.run_once() == 1
    assert await outbox_rows(cpo) == []
