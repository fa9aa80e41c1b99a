"""The Hub's operator commands: `evroam init --role HUB`, `partners suspend`,
`partners resume` and `partners list --json`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from evroam.cli import app
from evroam.config import NodeConfig
from tests.clientinfo import status_at
from tests.hubnet import CPO1, EMSP1, Net, call, hub_network
from tests.nodes import Cluster, Databases, wait_for
from tests.services import Service, free_port, run


def cli(*args: str):
    # In a thread: the command runs its own event loop, and ours must go on serving.
    return asyncio.to_thread(CliRunner().invoke, app, list(args), env={"COLUMNS": "300"})


def test_init_makes_a_hub(tmp_path: Path):
    home = tmp_path / "hub"
    result = CliRunner().invoke(app, ["init", "--home", str(home), "--role", "HUB", "--country", "NL", "--party",
                                      "HUB", "--public-url", "http://127.0.0.1:1", "--name", "the hub"])
    assert result.exit_code == 0, result.output
    cfg = NodeConfig.load(home)
    assert [(r.role.value, r.country_code, r.party_id) for r in cfg.roles] == [("HUB", "NL", "HUB")]
    assert (cfg.hub_liveness_s, cfg.hub_liveness_check_s) == (300.0, 10.0)


async def _routed_status(net: Net) -> int:
    _, env, _ = await call("GET", net.url("emsp", "locations", "SENDER", "L1"), net.token("emsp"),
                           frm=("DE", "EMS"), to=("NL", "CPO"))
    return env["status_code"]


async def test_suspend_and_resume_reach_a_running_hub_and_every_party(cluster):
    net = await hub_network(cluster, {"emsp": EMSP1, "cpo": CPO1})
    net.hub.config.save()
    home = str(net.hub.config.home)
    name = (await net.at_hub("cpo")).name

    result = await cli("partners", "suspend", "--home", home, name)
    assert result.exit_code == 0, result.output
    assert f"Suspended {name} (CPO NL/CPO): SUSPENDED" in result.output
    # The running Hub's directory reloads within a second; its worker delivers the ClientInfo.
    await wait_for(lambda: _routed_status_is(net, 4003), what="routing to the suspended CPO refused")
    await wait_for(lambda: _status(net, "SUSPENDED"), what="SUSPENDED at the eMSP")
    listed = json.loads((await cli("partners", "list", "--home", home, "--json")).output)
    assert sorted((p["name"], p["parties"][0]["status"]) for p in listed) == [("cpo", "SUSPENDED"),
                                                                              ("emsp", "CONNECTED")]
    assert [p["parties"] for p in listed if p["name"] == "cpo"] == [
        [{"country_code": "NL", "party_id": "CPO", "role": "CPO", "status": "SUSPENDED"}]]
    again = await cli("partners", "suspend", "--home", home, name)
    assert (again.exit_code, again.output.strip()) == (0, f"{name} was already SUSPENDED (nothing pushed)")

    result = await cli("partners", "resume", "--home", home, name)
    assert result.exit_code == 0 and f"Resumed {name} (CPO NL/CPO): CONNECTED" in result.output, result.output
    await wait_for(lambda: _status(net, "CONNECTED"), what="CONNECTED again at the eMSP")
    await wait_for(lambda: _routed_status_is(net, 2000, 1000), what="routing to the CPO again")


async def _routed_status_is(net: Net, *codes: int) -> bool:
    return await _routed_status(net) in codes


async def _status(net: Net, status: str) -> bool:
    return await status_at(net, "emsp", "NL", "CPO") == status


async def test_suspend_refuses_what_it_cannot_do(cluster):
    net = await hub_network(cluster, {"emsp": EMSP1})
    net.hub.config.save()
    net["emsp"].config.save()
    result = await cli("partners", "suspend", "--home", str(net.hub.config.home), "nobody")
    assert (result.exit_code, result.output.strip()) == (1, "no partner named 'nobody'")
    result = await cli("partners", "suspend", "--home", str(net["emsp"].config.home), net.hub_at["emsp"].name)
    assert result.exit_code == 1
    assert "this node plays no HUB role" in result.output
    listed = json.loads((await cli("partners", "list", "--home", str(net["emsp"].config.home), "--json")).output)
    # Elsewhere than on a Hub: the roles, without a ClientInfo status.
    assert [p["parties"] for p in listed] == [[{"country_code": "NL", "party_id": "HUB", "role": "HUB"}]]


async def test_evroam_partners_suspend_and_list_on_a_served_hub(tmp_path: Path):
    port = free_port()
    home = tmp_path / "hub"
    await asyncio.to_thread(run, "init", "--home", str(home), "--role", "HUB", "--country", "NL", "--party", "HUB",
                            "--public-url", f"http://127.0.0.1:{port}", "--port", str(port))
    cluster = Cluster(Databases("sqlite", tmp_path), tmp_path)
    with Service("serve", "--home", str(home)) as hub:
        await asyncio.to_thread(hub.wait_event, "serve.started")
        try:
            net = await _join_served(cluster, home, {"emsp": EMSP1, "cpo": CPO1})
            await asyncio.to_thread(run, "partners", "suspend", "--home", str(home), "cpo")
            await wait_for(lambda: _status(net, "SUSPENDED"), what="SUSPENDED at the eMSP, sent by the served Hub")
            out = (await asyncio.to_thread(run, "partners", "list", "--home", str(home), "--json")).stdout
            assert [(p["name"], p["parties"]) for p in json.loads(out)] == [
                ("emsp", [{"country_code": "DE", "party_id": "EMS", "role": "EMSP", "status": "CONNECTED"}]),
                ("cpo", [{"country_code": "NL", "party_id": "CPO", "role": "CPO", "status": "SUSPENDED"}])]
        finally:
            await cluster.close()
        assert hub.stop() == 0


async def _join_served(cluster: Cluster, home: Path, parties: dict) -> Net:
    net = Net(hub=None)  # type: ignore[arg-type]  # the Hub is the served process
    for name, roles in parties.items():
        node = await cluster.node(name, roles)
        invite = json.loads((await asyncio.to_thread(run, "partners", "invite", "--home", str(home), "--name", name,
                                                     "--json")).stdout)
        net.hub_at[name] = await node.handshake.register(invite["versions_url"], invite["token"])
        net.nodes[name] = node
    return net
