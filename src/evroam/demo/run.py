"""The demo: a CPO node and an eMSP node on loopback ports (free ones unless
given: `evroam demo --cpo-port 9001 --emsp-port 9002`), in temporary homes, run the whole session lifecycle over real OCPI HTTP, then stop:

0. the CPO invites, the eMSP registers (credentials A → B → C);
1. the CPO publishes a location and a tariff;
2. the eMSP pulls them, then receives pushes (an EVSE status PATCH);
3. the eMSP pushes a token;
4. a START_SESSION command is accepted and its result comes back;
5. the session goes ACTIVE, with charging periods PATCHed in;
6. a STOP_SESSION command ends it: COMPLETED;
7. a priced CDR arrives at the eMSP, which checks it against the tariff: ACCEPTED.

Session times are simulated (a 90-minute session, started 90 minutes ago)
so the CDR has something to price; every message is real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from rich.table import Table

from evroam.cli_common import make_console, run
from evroam.config import NodeConfig, RoleConfig
from evroam.logs import configure
from evroam.node import Node, bind_socket
from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandResultType, CommandType
from evroam.ocpi.common import Role
from evroam.ocpi.locations import Location, Status
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.tokens import Token
from evroam.ocpi.types import format_datetime, utcnow
from evroam.store import calllog, objects
from evroam.store.objects import ObjectKey
from evroam.modules.locations import owner as cpo_locations
from evroam.modules.sessions import owner as cpo_sessions

console = make_console()
T_START = time.monotonic()


def say(actor: str, text: str) -> None:
    colour = {"CPO": "cyan", "eMSP": "magenta", "demo": "white"}[actor]
    console.print(f"[dim]{time.monotonic() - T_START:6.2f}s[/dim]  [{colour}]{actor:>4}[/{colour}]  {text}")


async def until(cond: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo: timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _config(home: Path, port: int, role: Role, cc: str, pid: str, name: str, db: str | None) -> NodeConfig:
    cfg = NodeConfig(home=home, public_url=f"http://127.0.0.1:{port}", name=name, port=port, db=db,
                     roles=[RoleConfig(role=role, country_code=cc, party_id=pid, name=name)])
    cfg.save()
    return cfg


TARIFF = {
    "country_code": "NL", "party_id": "EVR", "id": "AC-STANDARD", "currency": "EUR",
    "elements": [{"price_components": [
        {"type": "FLAT", "price": 0.50, "vat": 21, "step_size": 1},
        {"type": "ENERGY", "price": 0.35, "vat": 21, "step_size": 1},
        {"type": "PARKING_TIME", "price": 2.00, "vat": 21, "step_size": 300}]}],
    "last_updated": "2026-01-01T00:00:00Z",
}


def location() -> dict:
    evses = [{"uid": f"E{i}", "evse_id": f"NL*EVR*E000{i}", "status": "AVAILABLE",
              "capabilities": ["REMOTE_START_STOP_CAPABLE", "RFID_READER"],
              "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                              "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32,
                              "tariff_ids": ["AC-STANDARD"], "last_updated": "2026-01-01T00:00:00Z"}],
              "last_updated": "2026-01-01T00:00:00Z"} for i in (1, 2)]
    return {"country_code": "NL", "party_id": "EVR", "id": "UTRECHT-CS", "publish": True,
            "name": "Utrecht Centraal P+R", "address": "Jaarbeursplein 1", "city": "Utrecht",
            "postal_code": "3521 AL", "country": "NLD",
            "coordinates": {"latitude": "52.08910", "longitude": "5.10760"}, "evses": evses,
            "time_zone": "Europe/Amsterdam", "last_updated": "2026-01-01T00:00:00Z"}


async def lifecycle(base: Path, cpo_db: str | None = None, emsp_db: str | None = None, *,
                    sockets: tuple[socket.socket, socket.socket] | None = None) -> int:
    """Run the whole lifecycle; the databases default to SQLite in `base`,
    the listening sockets (CPO, eMSP) to free loopback ports."""
    cpo_sock, emsp_sock = sockets or (bind_socket(), bind_socket())
    cpo = Node(_config(base / "cpo", cpo_sock.getsockname()[1], Role.CPO, "NL", "EVR", "evroam CPO demo", cpo_db))
    emsp = Node(_config(base / "emsp", emsp_sock.getsockname()[1], Role.EMSP, "DE", "EVM", "evroam eMSP demo",
                        emsp_db))
    sim_start = utcnow() - timedelta(minutes=90)
    session_ids: list[str] = []

    # --- the CPO's business hooks: its charge points carry out commands -----------------
    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        async def on_the_charger() -> None:
            evse = command.evse_uid or "E1"
            session = await cpo_sessions.start(
                cpo, location_id=command.location_id, evse_uid=evse, connector_id=command.connector_id or "1",
                cdr_token={"country_code": command.token.country_code, "party_id": command.token.party_id,
                           "uid": command.token.uid, "type": command.token.type.value,
                           "contract_id": command.token.contract_id},
                currency="EUR", auth_method="COMMAND", start_date_time=sim_start,
                authorization_reference=command.authorization_reference)
            session_ids.append(session.id)
            await cpo_locations.set_evse_status(cpo, command.location_id, evse, Status.CHARGING)
            await handle.result(CommandResultType.ACCEPTED)
            say("CPO", f"charger started session {session.id[:8]}…, EVSE {evse} CHARGING")

        asyncio.get_running_loop().create_task(on_the_charger())
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

    @cpo.on(CommandType.STOP_SESSION)
    async def stop_session(command, handle):
        async def on_the_charger() -> None:
            await cpo_sessions.stop(cpo, command.session_id, end_date_time=sim_start + timedelta(minutes=90))
            await cpo_locations.set_evse_status(cpo, "UTRECHT-CS", "E1", Status.AVAILABLE)
            await handle.result(CommandResultType.ACCEPTED)
            say("CPO", "charger stopped the session: COMPLETED, EVSE E1 AVAILABLE")

        asyncio.get_running_loop().create_task(on_the_charger())
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

    await cpo.serve_in_background(cpo_sock)
    await emsp.serve_in_background(emsp_sock)
    try:
        say("demo", f"CPO  at {cpo.config.versions_url}")
        say("demo", f"eMSP at {emsp.config.versions_url}")

        # 0. registration
        token_a, versions_url = await cpo.handshake.invite("emsp")
        say("CPO", "invites the eMSP: token A issued")
        # 1. the CPO publishes (before the eMSP is connected, so the eMSP must pull)
        await cpo.publish("tariffs", Tariff.from_wire(TARIFF))
        await cpo.publish("locations", Location.from_wire(location()))
        say("CPO", "publishes tariff AC-STANDARD and location UTRECHT-CS (2 EVSEs)")
        party = await emsp.handshake.register(versions_url, token_a)
        say("eMSP", f"registered with {party.name} on OCPI {party.version}: "
                    f"{', '.join(sorted({e['identifier'] for e in party.endpoints}))}")

        # 2. pull, then pushes
        for module in ("locations", "tariffs"):
            result = await emsp.pull(party.name, module, full=True)
            say("eMSP", f"pulled {module}: {result.stored} object(s)")
        await cpo_locations.set_evse_status(cpo, "UTRECHT-CS", "E2", Status.OUTOFORDER)
        say("CPO", "EVSE E2 goes OUTOFORDER (pushed as a PATCH)")

        async def e2_out_of_order() -> bool:
            doc = await _stored(emsp, "locations", party.id, "NL", "EVR", "UTRECHT-CS")
            return doc is not None and any(e["uid"] == "E2" and e["status"] == "OUTOFORDER" for e in doc["evses"])

        await until(e2_out_of_order, "the EVSE status push")
        say("eMSP", "received the push: E2 OUTOFORDER")

        # 3. the eMSP pushes a token
        await emsp.publish("tokens", Token.from_wire({
            "country_code": "DE", "party_id": "EVM", "uid": "APP-0001", "type": "APP_USER",
            "contract_id": "DE-EVM-C00001-X", "issuer": "evroam eMSP demo", "valid": True, "whitelist": "ALLOWED",
            "last_updated": format_datetime(utcnow())}))
        cpo_party = await cpo.party("emsp")
        await until(lambda: _has(cpo, "tokens", cpo_party.id, "DE", "EVM", "APP-0001", "APP_USER"), "the token push")
        say("eMSP", "pushed token APP-0001; the CPO has it")

        # 4. START_SESSION
        body = {"token": json.loads((await _raw(emsp, "tokens", 0, "DE", "EVM", "APP-0001", "APP_USER"))),
                "location_id": "UTRECHT-CS", "evse_uid": "E1", "connector_id": "1",
                "authorization_reference": "DEMO-AUTH-1"}
        start_id = await emsp.send_command(party.name, CommandType.START_SESSION, body)
        await until(lambda: _state(emsp, start_id, "COMPLETED"), "the START_SESSION result")
        t = await emsp.command(start_id)
        say("eMSP", f"START_SESSION: response {t.response} (timeout {t.timeout}s), result {t.result}")

        # 5. the session, with charging periods PATCHed in
        await until(lambda: _has_session(emsp, party.id, session_ids), "the session at the eMSP")
        sid = session_ids[0]
        periods = [
            {"start_date_time": format_datetime(sim_start), "dimensions": [
                {"type": "ENERGY", "volume": 9.5}, {"type": "MAX_POWER", "volume": 11}]},
            {"start_date_time": format_datetime(sim_start + timedelta(minutes=30)), "dimensions": [
                {"type": "ENERGY", "volume": 8.2}, {"type": "MAX_POWER", "volume": 11}]},
            {"start_date_time": format_datetime(sim_start + timedelta(minutes=60)), "dimensions": [
                {"type": "PARKING_TIME", "volume": 0.5}]},
        ]
        for p in periods:
            await cpo_sessions.update(cpo, sid, [p])
        await until(lambda: _periods(emsp, party.id, sid, 3), "the charging periods at the eMSP")
        doc = await _stored(emsp, "sessions", party.id, "NL", "EVR", sid)
        say("CPO", f"session {sid[:8]}… ACTIVE; 3 charging periods PATCHed in")
        say("eMSP", f"sees {doc['status']}, {doc['kwh']} kWh, {len(doc['charging_periods'])} periods")

        # 6. STOP_SESSION
        stop_id = await emsp.send_command(party.name, CommandType.STOP_SESSION, {"session_id": sid})
        await until(lambda: _state(emsp, stop_id, "COMPLETED"), "the STOP_SESSION result")
        await until(lambda: _session_status(emsp, party.id, sid, "COMPLETED"), "the COMPLETED session")
        say("eMSP", "STOP_SESSION accepted; the session is COMPLETED")

        # 7. the CDR
        loc = Location.from_wire(location())
        tariffs = await cpo_sessions.connector_tariffs(cpo, loc, "E1", "1")
        cdr = await cpo_sessions.issue_cdr(cpo, sid, tariffs, loc)
        say("CPO", f"issues CDR {cdr.id[:8]}…: {cdr.total_energy} kWh, {cdr.total_time} h, "
                   f"total {cdr.total_cost.excl_vat} EUR excl. / {cdr.total_cost.incl_vat} incl. VAT")
        await until(lambda: _has(emsp, "cdrs", party.id, "NL", "EVR", cdr.id), "the CDR at the eMSP")
        async with emsp.engine.connect() as conn:
            stored = await objects.get(conn, ObjectKey("cdrs", party.id, "NL", "EVR", cdr.id))
        say("eMSP", f"received the CDR and re-priced it: {stored.status}{f' ({stored.note})' if stored.note else ''}")
        if stored.status != "ACCEPTED":
            raise RuntimeError(f"the CDR was not accepted: {stored.note}")

        await cpo.call_log.flush()
        await emsp.call_log.flush()
        _calls_table("CPO: the OCPI calls it logged", await calllog.recent(cpo.engine, limit=200))
    finally:
        await emsp.stop()
        await cpo.stop()
    say("demo", "[green]lifecycle complete[/green]")
    return 0


def _calls_table(title: str, rows: list[dict]) -> None:
    counts: dict[tuple[str, str, str, str], int] = {}
    for r in rows:
        parts = r["url"].split("?")[0].split("/ocpi/", 1)[-1].split("/")
        # …/ocpi/2.2.1/{sender|receiver}/{module}/… or …/ocpi/{versions|2.2.1[/credentials]}
        module = parts[2] if len(parts) > 2 and parts[1] in ("sender", "receiver") else "/".join(parts[:2])
        key = (r["direction"], r["method"], module, str(r["http_status"]))
        counts[key] = counts.get(key, 0) + 1
    table = Table(title=title)
    for col in ("dir", "method", "module", "http", "calls"):
        table.add_column(col)
    for (d, m, mod, h), n in sorted(counts.items()):
        table.add_row(d, m, mod, h, str(n))
    console.print(table)


async def _raw(node: Node, module: str, owner: int, cc: str, pid: str, oid: str, type_: str = "") -> str | None:
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, owner, cc, pid, oid, type_))
    return s.data if s else None


async def _stored(node: Node, module: str, owner: int, cc: str, pid: str, oid: str) -> dict | None:
    raw = await _raw(node, module, owner, cc, pid, oid)
    return json.loads(raw) if raw else None


async def _has(node: Node, module: str, owner: int, cc: str, pid: str, oid: str, type_: str = "") -> bool:
    return await _raw(node, module, owner, cc, pid, oid, type_) is not None


async def _state(node: Node, tracking_id: str, state: str) -> bool:
    t = await node.command(tracking_id)
    return t is not None and t.state == state


async def _has_session(node: Node, owner: int, ids: list[str]) -> bool:
    return bool(ids) and await _has(node, "sessions", owner, "NL", "EVR", ids[0])


async def _periods(node: Node, owner: int, sid: str, n: int) -> bool:
    doc = await _stored(node, "sessions", owner, "NL", "EVR", sid)
    return doc is not None and len(doc.get("charging_periods") or []) == n


async def _session_status(node: Node, owner: int, sid: str, status: str) -> bool:
    doc = await _stored(node, "sessions", owner, "NL", "EVR", sid)
    return doc is not None and doc["status"] == status


def main(cpo_port: int = 0, emsp_port: int = 0) -> int:
    """What `evroam demo` runs; a port of 0 means any free port."""
    configure(logging.WARNING)  # the timeline tells the story; info logs would drown it
    sockets = []
    # Both bound before anything starts, so a port in use is one line.
    for who, port in (("CPO", cpo_port), ("eMSP", emsp_port)):
        try:
            sockets.append(bind_socket("127.0.0.1", port))
        except OSError as exc:
            console.print(f"demo: the {who} cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
                          markup=False, highlight=False, soft_wrap=True)
            for sock in sockets:
                sock.close()
            return 1
    with tempfile.TemporaryDirectory(prefix="evroam-demo-") as tmp:
        return run(lifecycle(Path(tmp), sockets=(sockets[0], sockets[1])))


if __name__ == "__main__":
    raise SystemExit(main())
