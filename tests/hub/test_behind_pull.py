"""A party behind a Hub pulls through it (docs/hub/behind-pull.md): a GET All
with TO = the Hub, each object under its owner, and the pull state per owner:
watermarks, stale marking, OFFLINE owners skipped and pulled again when
CONNECTED, the parties behind the Hub in `partners status`."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from structlog.testing import capture_logs
from typer.testing import CliRunner

from evroam.modules.hubclientinfo import owner
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.ocpi.locations import Location
from evroam.ocpi.types import format_datetime
from evroam.store import calllog
from evroam.store import objects as repo
from evroam.store import parties as party_repo
from evroam.store.objects import ObjectKey
from evroam.store.tables import objects, sync_state
from evroam.sync.scheduler import pull_modules
from tests.builders import location
from tests.clientinfo import join, status_at
from tests.hubnet import CPO1, CPO2, EMSP1, Net, hub_network
from tests.nodes import wait_for
from tests.partners import outbox_rows

OLD, LATER = "2025-06-01T00:00:00Z", "2099-01-01T00:00:00Z"


async def network(cluster, *, emsp_first: bool = True, hub: dict | None = None, **emsp_settings) -> Net:
    """A Hub, an eMSP and two CPOs. Only the Hub delivers (the CPOs push
    nothing, so what the eMSP holds is what it pulled); the eMSP's scheduler
    runs when a test says so (`scheduled`)."""
    net = await hub_network(cluster, {}, hub_liveness_check_s=3600.0, **(hub or {}))
    emsp = await cluster.node("emsp", EMSP1, run_workers=False, **emsp_settings)
    if emsp_first:
        await join(net, "emsp", emsp)
    for name, roles in (("cpo1", CPO1), ("cpo2", CPO2)):
        await join(net, name, await cluster.node(name, roles, run_workers=False))
    if emsp_first:
        for cc, pid in (("NL", "CPO"), ("BE", "CP2")):
            await wait_for(lambda c=cc, p=pid: _is(net, (c, p), "CONNECTED"), what=f"{cc}/{pid} CONNECTED at the eMSP")
    else:
        await join(net, "emsp", emsp)
    return net


async def _is(net: Net, key: tuple[str, str], status: str) -> bool:
    return await status_at(net, "emsp", *key) == status


async def publish(net: Net, name: str, cc: str, pid: str, *ids: str, updated: str = OLD) -> None:
    for lid in ids:
        await net[name].publish("locations", Location.from_wire(location(lid, cc, pid, updated=updated)))


async def hub_of(net: Net):
    return await net["emsp"].party(net.hub_at["emsp"].name)


async def held(net: Net) -> list[tuple[int, str, str, str, bool]]:
    async with net["emsp"].engine.connect() as conn:
        rows = await conn.execute(sa.select(objects.c.owner_id, objects.c.cc_key, objects.c.pid_key, objects.c.oid_key,
                                            objects.c.stale)
                                  .where(objects.c.module == "locations").order_by(objects.c.id))
    return [tuple(r) for r in rows]


async def states(net: Net, module: str = "locations") -> dict[tuple[str, str], sa.Row]:
    async with net["emsp"].engine.connect() as conn:
        rows = await conn.execute(sa.select(sync_state).where(sync_state.c.module == module))
    return {(r.owner_cc, r.owner_pid): r for r in rows}


async def gets_sent(net: Net) -> list[str]:
    """The Locations list GETs the eMSP sent the Hub, in order."""
    emsp, url = net["emsp"], net.url("emsp", "locations", "SENDER")
    await emsp.call_log.flush()
    rows = await calllog.recent(emsp.engine, limit=100)
    return [r["url"] for r in reversed(rows) if r["direction"] == "out" and r["method"] == "GET"
            and r["url"].startswith(url)]


def date_from(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("date_from", [None])[0]


async def set_status(net: Net, name: str, status: ConnectionStatus) -> None:
    """The Hub sets a party's status (as liveness or the operator does) and the eMSP hears of it."""
    reg = await net.at_hub(name)
    assert await owner.set_status(net.hub, reg.id, status) is not None
    key = next((r["country_code"], r["party_id"]) for r in reg.roles)
    await wait_for(lambda: _is(net, key, status.value), what=f"{status.value} at the eMSP")


async def test_the_emsp_pulls_both_cpos_through_the_hub_each_under_its_owner(cluster):
    net = await network(cluster)
    await publish(net, "cpo1", "NL", "CPO", "A1", "A2")
    await publish(net, "cpo2", "BE", "CP2", "B1")
    hub = await hub_of(net)
    result = await net["emsp"].pull(hub.name, "locations", full=True)
    assert (result.error, result.stored, result.foreign, result.skipped, result.marked_stale) == (None, 3, 0, [], 0)
    assert await held(net) == [(hub.id, "NL", "CPO", "A1", False), (hub.id, "NL", "CPO", "A2", False),
                               (hub.id, "BE", "CP2", "B1", False)]
    rows = await states(net)
    assert {k: (r.last_error, r.objects_seen) for k, r in rows.items()} == {
        ("", ""): (None, 3), ("NL", "CPO"): (None, 2), ("BE", "CP2"): (None, 1)}
    assert len({r.last_success_start for r in rows.values()}) == 1
    # One GET All: the Hub merged both lists (without TO = the Hub it would take it for an Open Routing Request).
    [sent] = await gets_sent(net)
    assert date_from(sent) is None


async def test_an_incremental_pull_uses_each_owners_own_watermark(cluster):
    net = await network(cluster)
    await publish(net, "cpo1", "NL", "CPO", "A1")
    await publish(net, "cpo2", "BE", "CP2", "B1")
    emsp, hub = net["emsp"], await hub_of(net)
    assert (await emsp.pull(hub.name, "locations", full=True)).stored == 2
    first = {k: r.last_success_start for k, r in (await states(net)).items()}
    await set_status(net, "cpo2", ConnectionStatus.OFFLINE)
    await publish(net, "cpo1", "NL", "CPO", "A2", updated=LATER)
    await publish(net, "cpo2", "BE", "CP2", "B2", updated=LATER)
    delta = await emsp.pull(hub.name, "locations")
    assert (delta.error, delta.stored, delta.skipped) == (None, 1, ["BE/CP2"])
    second = {k: r.last_success_start for k, r in (await states(net)).items()}
    assert second[("NL", "CPO")] > first[("NL", "CPO")]
    assert second[("BE", "CP2")] == first[("BE", "CP2")]  # skipped: its watermark stays
    await set_status(net, "cpo2", ConnectionStatus.CONNECTED)
    again = await emsp.pull(hub.name, "locations")
    assert (again.error, again.stored, again.skipped) == (None, 2, [])  # A2 (unchanged) and B2
    # Each GET's date_from is the oldest watermark of the owners it concerns.
    sent = await gets_sent(net)
    assert [date_from(u) for u in sent] == [None, format_datetime(first[("NL", "CPO")]),
                                            format_datetime(first[("BE", "CP2")])]
    assert ("BE", "CP2", "B2") in [r[1:4] for r in await held(net)]
    third = {k: r.last_success_start for k, r in (await states(net)).items()}
    assert third[("BE", "CP2")] == third[("NL", "CPO")] > second[("NL", "CPO")]


async def _delete(net: Net, name: str, cc: str, pid: str, lid: str) -> None:
    async with net[name].engine.begin() as conn:
        stored = await repo.get(conn, ObjectKey("locations", 0, cc, pid, lid))
        await repo.delete(conn, stored.pk)


async def test_a_cpos_removed_location_is_marked_stale_without_touching_the_others(cluster):
    net = await network(cluster)
    await publish(net, "cpo1", "NL", "CPO", "A1", "A2")
    await publish(net, "cpo2", "BE", "CP2", "B1")
    emsp, hub = net["emsp"], await hub_of(net)
    await emsp.pull(hub.name, "locations", full=True)
    await _delete(net, "cpo1", "NL", "CPO", "A2")
    full = await emsp.pull(hub.name, "locations", full=True)
    assert (full.error, full.stored, full.marked_stale) == (None, 2, 1)
    assert [(r[3], r[4]) for r in await held(net)] == [("A1", False), ("A2", True), ("B1", False)]
    # A CPO that sends nothing any more is asked alone (TO = it) before its objects are stale.
    await _delete(net, "cpo2", "BE", "CP2", "B1")
    full = await emsp.pull(hub.name, "locations", full=True)
    assert (full.error, full.stored, full.marked_stale) == (None, 1, 1)
    assert [(r[3], r[4]) for r in await held(net)] == [("A1", False), ("A2", True), ("B1", True)]
    assert (await states(net))[("BE", "CP2")].objects_seen == 0


async def test_a_cpo_the_hub_leaves_out_is_not_marked_stale(cluster):
    net = await network(cluster)
    await publish(net, "cpo1", "NL", "CPO", "A1")
    await publish(net, "cpo2", "BE", "CP2", "B1")
    emsp, hub = net["emsp"], await hub_of(net)
    await emsp.pull(hub.name, "locations", full=True)
    before = (await states(net))[("NL", "CPO")]
    reg = await net.at_hub("cpo1")
    async with net.hub.engine.begin() as conn:
        await party_repo.update(conn, reg.id, token_out="not-the-token")  # cpo1 now answers the Hub 401
    net.hub.hub.directory.invalidate()
    full = await emsp.pull(hub.name, "locations", full=True)
    assert (full.error, full.stored, full.marked_stale) == (None, 1, 0)
    assert [(r[3], r[4]) for r in await held(net)] == [("A1", False), ("B1", False)]
    after = (await states(net))[("NL", "CPO")]
    assert after.last_success_start == before.last_success_start
    assert after.last_error is not None and "401" in after.last_error


async def scheduled(net: Net, module: str | None = None) -> list:
    """One round of the eMSP's scheduler, awaited to the end; the pulls it ran (of one module)."""
    scheduler = net["emsp"].scheduler
    before = len(scheduler.results)
    await asyncio.gather(*await scheduler.run_once())
    return [r for _, r in scheduler.results[before:] if module in (None, r.module)]


async def test_an_offline_cpo_is_skipped_and_pulled_when_connected_again(cluster):
    net = await network(cluster, hub_reconnect_pull_s=0.0)
    await publish(net, "cpo1", "NL", "CPO", "A1")
    await publish(net, "cpo2", "BE", "CP2", "B1")
    # Each CPO's CONNECTED (its registration) asked for a pull of its objects alone.
    ran = await scheduled(net, "locations")
    assert sorted((r.owner, r.full, r.stored, r.error) for r in ran) == [
        ("BE/CP2", True, 1, None), ("NL/CPO", True, 1, None)]
    assert {k: r.owner_pull_due_at for k, r in (await states(net)).items()} == {
        ("NL", "CPO"): None, ("BE", "CP2"): None}
    assert await scheduled(net) == []  # done: nothing is due any more
    await set_status(net, "cpo2", ConnectionStatus.OFFLINE)
    await publish(net, "cpo2", "BE", "CP2", "B2")
    emsp, hub = net["emsp"], await hub_of(net)
    full = await emsp.pull(hub.name, "locations", full=True)
    assert (full.error, full.stored, full.marked_stale, full.skipped) == (None, 1, 0, ["BE/CP2"])
    assert [(r[2], r[3], r[4]) for r in await held(net)] == [("CPO", "A1", False), ("CP2", "B1", False)]
    # Asked alone while it is OFFLINE, it is skipped too.
    alone = await emsp.scheduler.pull_one(hub, "locations", full=True, owner=("BE", "CP2"))
    assert (alone.owner, alone.skipped, alone.stored, alone.error) == ("BE/CP2", ["BE/CP2"], 0, None)
    await set_status(net, "cpo2", ConnectionStatus.CONNECTED)
    ran = await scheduled(net, "locations")
    assert [(r.owner, r.full, r.stored, r.error) for r in ran] == [("BE/CP2", True, 2, None)]
    assert [(r[3], r[4]) for r in await held(net)] == [("A1", False), ("B1", False), ("B2", False)]


async def test_a_suspended_cpo_is_skipped_until_resumed(cluster):
    net = await network(cluster, hub_reconnect_pull_s=3600.0)
    await publish(net, "cpo1", "NL", "CPO", "A1")
    emsp, hub = net["emsp"], await hub_of(net)
    cpo1 = await net.at_hub("cpo1")
    await owner.operator_set(net.hub, cpo1.name, ConnectionStatus.SUSPENDED)
    await wait_for(lambda: _is(net, ("NL", "CPO"), "SUSPENDED"), what="SUSPENDED at the eMSP")
    full = await emsp.pull(hub.name, "locations", full=True)
    assert (full.stored, full.skipped) == (0, ["NL/CPO"])
    await owner.operator_set(net.hub, cpo1.name, ConnectionStatus.CONNECTED)
    await wait_for(lambda: _is(net, ("NL", "CPO"), "CONNECTED"), what="CONNECTED at the eMSP")
    # Due in an hour (hub_reconnect_pull_s), not now.
    assert (await states(net))[("NL", "CPO")].owner_pull_due_at is not None
    assert [r.owner for r in await scheduled(net)] == []
    full = await emsp.pull(hub.name, "locations", full=True)
    assert (full.stored, full.skipped) == (1, [])


async def _dead(net: Net, party_id: int) -> bool:
    return ("DEAD", party_id) in await outbox_rows(net.hub, party_id)


async def cli(*args: str) -> tuple[int, str, str]:
    """`evroam ARGS` in a thread: the CLI runs its own event loop there."""
    from evroam.cli import app
    from evroam.cli_ops import register

    register(app)
    with capture_logs():
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


async def test_partners_status_shows_the_parties_behind_the_hub(cluster):
    net = await network(cluster)
    await publish(net, "cpo1", "NL", "CPO", "A1")
    emsp, hub = net["emsp"], await hub_of(net)
    await set_status(net, "cpo2", ConnectionStatus.OFFLINE)
    await emsp.pull(hub.name, "locations", full=True)
    emsp.config.save()
    rc, out, err = await cli("partners", "status", "--home", str(emsp.config.home), "--json")
    assert rc == 0, err
    (row,) = json.loads(out)
    assert (row["name"], row["status"]) == (hub.name, "REGISTERED")
    behind = [(b["role"], b["country_code"], b["party_id"], b["status"]) for b in row["behind"]]
    assert behind == [("CPO", "NL", "CPO", "CONNECTED"), ("CPO", "BE", "CP2", "OFFLINE")]
    first, second = row["behind"]
    assert (first["pulls"]["locations"]["objects_seen"], first["pulls"]["locations"]["last_error"]) == (1, None)
    assert second["pulls"] == {}  # skipped: never pulled
    assert row["pulls"]["locations"]["objects_seen"] == 1
    rc, out, err = await cli("partners", "status", "--home", str(emsp.config.home))
    assert rc == 0, err
    assert "behind the Hub: CPO NL/CPO CONNECTED" in out and "behind the Hub: CPO BE/CP2 OFFLINE" in out


async def test_the_pulled_clientinfo_list_heals_a_missed_push(cluster):
    # The eMSP joins last: the Hub pushed it nobody's CONNECTED (a newcomer GETs the list).
    net = await network(cluster, emsp_first=False, hub={"delivery_max_attempts": 1},
                        pull_initial_delay_s=0.0, hub_reconnect_pull_s=0.0)
    await publish(net, "cpo1", "NL", "CPO", "A1")
    assert await status_at(net, "emsp", "NL", "CPO") is None
    emsp, hub = net["emsp"], await hub_of(net)
    assert "hubclientinfo" in pull_modules(hub, [r.role for r in emsp.config.roles])
    ran = await scheduled(net)  # every module's first pull, the Hub's ClientInfo list among them
    info = next(r for r in ran if r.module == "hubclientinfo")
    assert (info.error, info.stored, info.foreign) == (None, 3, 0)  # the eMSP itself among them
    assert (await status_at(net, "emsp", "NL", "CPO"), await status_at(net, "emsp", "BE", "CP2")) == (
        "CONNECTED", "CONNECTED")
    # A push the eMSP missed (it was down) is healed by the next pull of the list.
    await emsp.stop()
    await owner.operator_set(net.hub, (await net.at_hub("cpo2")).name, ConnectionStatus.SUSPENDED)
    emsp_at_hub = await net.at_hub("emsp")
    await wait_for(lambda: _dead(net, emsp_at_hub.id), what="the push to the eMSP dead-lettered")
    emsp = net.nodes["emsp"] = await cluster.restart(emsp)
    result = await emsp.pull(hub.name, "hubclientinfo", full=True)
    assert (result.error, result.stored) == (None, 3)
    assert await status_at(net, "emsp", "BE", "CP2") == "SUSPENDED"


async def test_migration_0008_keeps_each_partners_row_as_its_own(cluster):
    from alembic import command

    from evroam.store.db import _alembic_config, create_engine

    engine = create_engine(await cluster.dbs.new("migration"))

    async def to(revision: str, down: bool = False) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: (command.downgrade if down else command.upgrade)(_alembic_config(c),
                                                                                          revision))

    async def rows() -> list[tuple]:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(sa.text("SELECT * FROM sync_state"))]

    try:
        await to("0007")
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO parties (name, status, initiated_by_us, allow_raw_token, created_at, updated_at) "
                                       "VALUES ('hub', 'REGISTERED', false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(sa.text("INSERT INTO sync_state (party_id, module, objects_seen) "
                                       "VALUES (1, 'locations', 7)"))
        await to("0008")
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(sync_state.c.owner_cc, sync_state.c.owner_pid,
                                                sync_state.c.objects_seen, sync_state.c.owner_pull_due_at))).one()
        assert tuple(row) == ("", "", 7, None)
        async with engine.begin() as conn:  # a row per owner beside it
            await conn.execute(sync_state.insert().values(party_id=1, module="locations", owner_cc="NL",
                                                          owner_pid="CPO", objects_seen=2))
        await to("0007", down=True)
        assert await rows() == [(1, "locations", None, None, None, 7)]
    finally:
        await engine.dispose()
