"""The network demo (`make demo`, after the P2P demo): one Hub, two CPOs and
two eMSPs, each a real node on its own loopback port on SQLite in a
temporary home, talking real OCPI HTTP through the Hub:

1. every party registers with the Hub (credentials A → B → C);
2. each CPO publishes its tariff and location, one broadcast each through
   the Hub to both eMSPs; each eMSP GETs the merged Locations of both CPOs
   through the Hub (GET All), and one pulls them (kept per owner);
3. one eMSP broadcasts a token (TO = the Hub): both CPOs receive it;
4. a START_SESSION goes through the Hub to the second CPO (TO = that CPO),
   whose session and priced CDR are routed back; the eMSP ACCEPTs the CDR;
5. a CPO goes offline: the Hub's liveness check makes it OFFLINE, every
   other party sees it in HubClientInfo; it comes back: CONNECTED.


    python -m evroam.demo.network
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from evroam.cli_common import make_console, run
from evroam.config import NodeConfig, RoleConfig
from evroam.demo.run import until
from evroam.logs import configure
from evroam.node import Node, bind_socket
from evroam.ocpi import headers as H
from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandResultType, CommandType
from evroam.ocpi.common import Role
from evroam.ocpi.locations import Location
from evroam.ocpi.tariffs import Tariff
from evroam.demo.run import TARIFF
from evroam.ocpi.types import format_datetime, utcnow
from evroam.store import objects
from evroam.store import parties as party_repo
from evroam.store.objects import ObjectKey

console = make_console()
T0 = time.monotonic()
COLOURS = {"hub": "yellow", "cpo1": "cyan", "cpo2": "blue", "emsp1": "magenta", "emsp2": "red", "demo": "white"}
HUB = ("NL", "HUB")
PARTIES = {  # name -> (role, country_code, party_id, display name)
    "cpo1": (Role.CPO, "NL", "CP1", "Utrecht Charging"),
    "cpo2": (Role.CPO, "BE", "CP2", "Gent Laadpalen"),
    "emsp1": (Role.EMSP, "DE", "EM1", "Berlin Mobility"),
    "emsp2": (Role.EMSP, "FR", "EM2", "Paris Recharge"),
}
T = "2026-01-01T00:00:00Z"


def say(actor: str, text: str) -> None:
    c = COLOURS[actor]
    console.print(f"[dim]{time.monotonic() - T0:6.2f}s[/dim]  [{c}]{actor:>5}[/{c}]  {text}", highlight=False)


def _node(base: Path, name: str, port: int, role: Role, cc: str, pid: str, display: str, **settings: Any) -> Node:
    cfg = NodeConfig(home=base / name, public_url=f"http://127.0.0.1:{port}", name=display, port=port,
                     roles=[RoleConfig(role=role, country_code=cc, party_id=pid, name=display)])
    for k, v in settings.items():
        setattr(cfg, k, v)
    cfg.save()
    return Node(cfg)


def location(cc: str, pid: str, lid: str, city: str) -> dict:
    evse = {"uid": "E1", "evse_id": f"{cc}*{pid}*E1", "status": "AVAILABLE",
            "capabilities": ["REMOTE_START_STOP_CAPABLE", "RFID_READER"],
            "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                            "max_voltage": 230, "max_amperage": 32, "tariff_ids": ["AC-STANDARD"],
                            "last_updated": T}], "last_updated": T}
    return {"country_code": cc, "party_id": pid, "id": lid, "publish": True, "name": f"{city} station",
            "address": "Stationsplein 1", "city": city, "country": "NLD" if cc == "NL" else "BEL",
            "coordinates": {"latitude": "52.08910", "longitude": "5.10760"}, "evses": [evse],
            "time_zone": "Europe/Amsterdam", "last_updated": T}


class Network:
    """The five nodes, and what each knows of the Hub."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sockets = {name: bind_socket() for name in ("hub", *PARTIES)}
        self.ports = {name: sock.getsockname()[1] for name, sock in self.sockets.items()}
        # The Hub checks a silent party every half second and gives up after 3 failures.
        self.hub = _node(base, "hub", self.port("hub"), Role.HUB, *HUB, "evroam Hub demo",
                         hub_liveness_s=1.0, hub_liveness_check_s=0.5)
        self.nodes: dict[str, Node] = {n: self._party_node(n) for n in PARTIES}
        self.hub_at: dict[str, party_repo.Party] = {}

    def port(self, name: str) -> int:
        return self.ports[name]

    def _party_node(self, name: str) -> Node:
        role, cc, pid, display = PARTIES[name]
        return _node(self.base, name, self.port(name), role, cc, pid, display)

    async def start(self) -> None:
        await self.hub.serve_in_background(self.sockets["hub"])
        for name, node in self.nodes.items():
            await node.serve_in_background(self.sockets[name])

    async def stop(self) -> None:
        for node in [*self.nodes.values(), self.hub]:
            await node.stop()

    async def call(self, name: str, method: str, module: str, iface: str, path: str = "", *,
                   to: tuple[str, str], body: Any = None) -> tuple[int, dict, dict[str, str]]:
        """One OCPI request of party `name` to the Hub, FROM = its role, TO = `to`."""
        party = self.hub_at[name]
        _, cc, pid, _ = PARTIES[name]
        url = party.endpoint_url(module, iface).rstrip("/") + path
        headers = {"Authorization": H.encode_token(party.token_out), "X-Request-ID": f"demo-{time.monotonic_ns()}",
                   "X-Correlation-ID": "network-demo", "OCPI-from-country-code": cc, "OCPI-from-party-id": pid,
                   "OCPI-to-country-code": to[0], "OCPI-to-party-id": to[1]}
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.nodes[name].http.request(method, url, data=data, headers=headers) as resp:
            return resp.status, json.loads(await resp.read()), {k.lower(): v for k, v in resp.headers.items()}


async def _stored(node: Node, module: str, owner: int, cc: str, pid: str, oid: str, type_: str = "") -> dict | None:
    async with node.engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, owner, cc, pid, oid, type_))
    return json.loads(s.data) if s else None


async def client_info_status(net: Network, at: str, cc: str, pid: str) -> str | None:
    """The status of cc/pid in the ClientInfo that party `at` holds from the Hub."""
    doc = await _stored(net.nodes[at], "hubclientinfo", net.hub_at[at].id, cc, pid, pid)
    return doc["status"] if doc else None


# --- the steps -----------------------------------------------------------------------------------


async def register_all(net: Network) -> None:
    for name, node in net.nodes.items():
        token_a, versions_url = await net.hub.handshake.invite(name)
        net.hub_at[name] = await node.handshake.register(versions_url, token_a)
        _, cc, pid, display = PARTIES[name]
        say(name, f"registered with the Hub as {cc}/{pid} ({display}), OCPI {net.hub_at[name].version}")
    # The Hub pushes each newcomer's ClientInfo to the parties already there (a newcomer GETs the list).
    _, cc, pid, _ = PARTIES["emsp2"]

    async def known() -> bool:
        return all([await client_info_status(net, at, cc, pid) == "CONNECTED" for at in ("cpo1", "cpo2", "emsp1")])

    await until(known, "the last newcomer CONNECTED in the others' HubClientInfo")
    say("hub", "pushed HubClientInfo of each newcomer to the parties already connected: FR/EM2 CONNECTED at all")


async def publish_locations(net: Network) -> None:
    """Each CPO publishes its tariff and location: one broadcast each through
    the Hub (TO = the Hub), which delivers them to both eMSPs."""
    for name, lid, city in (("cpo1", "UTRECHT-CS", "Utrecht"), ("cpo2", "GENT-SP", "Gent")):
        _, cc, pid, _ = PARTIES[name]
        await net.nodes[name].publish("tariffs", Tariff.from_wire({**TARIFF, "country_code": cc, "party_id": pid}))
        await net.nodes[name].publish("locations", Location.from_wire(location(cc, pid, lid, city)))
        say(name, f"publishes tariff AC-STANDARD and location {lid}: a broadcast through the Hub")
    for at in ("emsp1", "emsp2"):
        for name, lid in (("cpo1", "UTRECHT-CS"), ("cpo2", "GENT-SP")):
            _, cc, pid, _ = PARTIES[name]

            async def arrived(at=at, cc=cc, pid=pid, lid=lid) -> bool:
                owner = net.hub_at[at].id
                return (await _stored(net.nodes[at], "locations", owner, cc, pid, lid) is not None
                        and await _stored(net.nodes[at], "tariffs", owner, cc, pid, "AC-STANDARD") is not None)

            await until(arrived, f"{name}'s tariff and location at {at}")
    say("hub", "delivered both CPOs' tariffs and locations to both eMSPs")


async def get_all(net: Network) -> None:
    for name in ("emsp1", "emsp2"):
        status, env, _ = await net.call(name, "GET", "locations", "SENDER", to=HUB)
        if (status, env.get("status_code")) != (200, 1000):
            raise RuntimeError(f"GET All through the Hub answered {status}: {env}")
        got = sorted(f"{o['country_code']}/{o['party_id']}/{o['id']}" for o in env["data"])
        say(name, f"GET All Locations through the Hub: {len(got)} merged from both CPOs: {', '.join(got)}")
        if len(got) != 2:
            raise RuntimeError(f"expected the Locations of both CPOs, got {got}")
    result = await net.nodes["emsp1"].pull(net.hub_at["emsp1"].name, "locations", full=True)
    say("emsp1", f"pulled the Locations of each CPO through the Hub: {result.stored} stored")


TOKEN = {"country_code": "DE", "party_id": "EM1", "uid": "APP-0001", "type": "APP_USER",
         "contract_id": "DE-EM1-C00001-X", "issuer": "Berlin Mobility", "valid": True, "whitelist": "ALLOWED",
         "last_updated": T}


async def broadcast_token(net: Network) -> None:
    token = {**TOKEN, "last_updated": format_datetime(utcnow())}
    status, env, _ = await net.call("emsp1", "PUT", "tokens", "RECEIVER", "/DE/EM1/APP-0001?type=APP_USER",
                                    to=HUB, body=token)
    if (status, env.get("status_code")) != (200, 1000):
        raise RuntimeError(f"the token broadcast answered {status}: {env}")
    say("emsp1", "broadcasts token APP-0001 (PUT, TO = the Hub)")
    for name in ("cpo1", "cpo2"):
        hub = await net.nodes[name].party(net.hub_at[name].name)

        async def held(node=net.nodes[name], owner=hub.id) -> bool:
            return await _stored(node, "tokens", owner, "DE", "EM1", "APP-0001", "APP_USER") is not None

        await until(held, f"the token at {name}")
        say(name, "received token APP-0001 from the Hub")


async def session_through_hub(net: Network, session_ids: list[str]) -> None:
    emsp = net.nodes["emsp1"]
    body = {"token": {k: TOKEN[k] for k in ("country_code", "party_id", "uid", "type", "contract_id", "issuer",
                                            "valid", "whitelist", "last_updated")},
            "location_id": "GENT-SP", "evse_uid": "E1", "connector_id": "1",
            "authorization_reference": "DEMO-HUB-1"}
    tracking = await emsp.send_command(net.hub_at["emsp1"].name, CommandType.START_SESSION, body,
                                       **{"to": ("BE", "CP2")})
    await until(lambda: _command_done(emsp, tracking), "the START_SESSION result")
    t = await emsp.command(tracking)
    say("emsp1", f"START_SESSION to BE/CP2 through the Hub: response {t.response}, result {t.result}")
    await until(lambda: _session_at(net, session_ids), "the session at the eMSP")
    say("emsp1", f"received session {session_ids[0][:8]}… from BE/CP2 through the Hub")
    from evroam.modules.sessions import owner as cpo_sessions

    cpo = net.nodes["cpo2"]
    # An hour of charging, on whole seconds: the CPO prices the CDR and the
    # eMSP re-prices it from the same times and volumes.
    started = datetime.fromisoformat(
        (await _stored(cpo, "sessions", 0, "BE", "CP2", session_ids[0]))["start_date_time"].replace("Z", "+00:00"))
    await cpo_sessions.update(cpo, session_ids[0], [{"start_date_time": format_datetime(started), "dimensions": [
        {"type": "ENERGY", "volume": 12.0}, {"type": "MAX_POWER", "volume": 11}]}])
    await cpo_sessions.stop(cpo, session_ids[0], end_date_time=started + timedelta(minutes=60))
    loc = Location.from_wire(location("BE", "CP2", "GENT-SP", "Gent"))
    cdr = await cpo_sessions.issue_cdr(cpo, session_ids[0], await cpo_sessions.connector_tariffs(cpo, loc, "E1", "1"),
                                       loc)
    say("cpo2", f"issues CDR {cdr.id[:8]}…: total {cdr.total_cost.incl_vat} EUR incl. VAT")
    owner = net.hub_at["emsp1"].id

    async def cdr_accepted() -> bool:
        async with emsp.engine.connect() as conn:
            s = await objects.get(conn, ObjectKey("cdrs", owner, "BE", "CP2", cdr.id))
        return s is not None and s.status == "ACCEPTED"

    await until(cdr_accepted, "the CDR ACCEPTED at the eMSP")
    say("emsp1", "received the CDR through the Hub and re-priced it: ACCEPTED")


async def _command_done(node: Node, tracking: str) -> bool:
    t = await node.command(tracking)
    return t is not None and t.state == "COMPLETED"


async def _session_at(net: Network, ids: list[str]) -> bool:
    return bool(ids) and await _stored(net.nodes["emsp1"], "sessions", net.hub_at["emsp1"].id, "BE", "CP2",
                                       ids[0]) is not None


def charge_point(cpo: Node, session_ids: list[str]) -> None:
    """CPO2's charge point: it starts a session for a START_SESSION."""
    from evroam.modules.sessions import owner as cpo_sessions

    @cpo.on(CommandType.START_SESSION)
    async def start_session(command, handle):
        async def on_the_charger() -> None:
            session = await cpo_sessions.start(
                cpo, location_id=command.location_id, evse_uid=command.evse_uid or "E1",
                connector_id=command.connector_id or "1",
                cdr_token={"country_code": command.token.country_code, "party_id": command.token.party_id,
                           "uid": command.token.uid, "type": command.token.type.value,
                           "contract_id": command.token.contract_id},
                currency="EUR", auth_method="COMMAND",
                start_date_time=utcnow().replace(microsecond=0) - timedelta(minutes=60),
                authorization_reference=command.authorization_reference)
            session_ids.append(session.id)
            await handle.result(CommandResultType.ACCEPTED)

        asyncio.get_running_loop().create_task(on_the_charger())
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)


async def offline_and_back(net: Network) -> None:
    watchers = ("cpo2", "emsp1", "emsp2")

    async def seen_as(status: str) -> bool:
        return all([await client_info_status(net, w, "NL", "CP1") == status for w in watchers])

    await net.nodes["cpo1"].stop()
    say("cpo1", "goes offline (its node stops)")
    await until(lambda: seen_as("OFFLINE"), "CPO1 OFFLINE in the others' HubClientInfo")
    say("hub", "liveness check: NL/CP1 does not answer: OFFLINE, pushed to every party")
    say("demo", "emsp1, emsp2 and cpo2 see NL/CP1 OFFLINE in HubClientInfo")
    net.sockets["cpo1"] = bind_socket("127.0.0.1", net.port("cpo1"))
    net.nodes["cpo1"] = net._party_node("cpo1")
    await net.nodes["cpo1"].serve_in_background(net.sockets["cpo1"])
    say("cpo1", "comes back on the same port")
    await until(lambda: seen_as("CONNECTED"), "CPO1 CONNECTED again")
    say("hub", "liveness check: NL/CP1 answers again: CONNECTED")
    say("demo", "emsp1, emsp2 and cpo2 see NL/CP1 CONNECTED in HubClientInfo")


async def network(base: Path) -> int:
    net = Network(base)
    session_ids: list[str] = []
    charge_point(net.nodes["cpo2"], session_ids)
    await net.start()
    try:
        say("demo", f"Hub at {net.hub.config.versions_url}; cpo1, cpo2, emsp1, emsp2 on ports "
                    f"{', '.join(str(net.port(n)) for n in PARTIES)}")
        await register_all(net)
        await publish_locations(net)
        await get_all(net)
        await broadcast_token(net)
        await session_through_hub(net, session_ids)
        await offline_and_back(net)
    finally:
        await net.stop()
    say("demo", "[green]network demo complete[/green]")
    return 0


def main() -> int:
    configure(logging.WARNING)  # the timeline tells the story
    logging.disable(logging.INFO)  # uvicorn re-arms its own loggers at INFO each time a node (re)starts
    with tempfile.TemporaryDirectory(prefix="evroam-network-demo-") as tmp:
        return run(network(Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
