"""Direct routing through the Hub (transport_and_format, "Party to Party via Hub")."""

from evroam.ocpi.locations import Location
from tests.builders import location
from tests.hubnet import CPO1, EMSP1, call, hub_network


async def test_sender_get_one_is_forwarded_with_the_header_rules(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    await net["cpo"].publish("locations", Location.from_wire(location("L1")))
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, headers = await call("GET", url, net.token("emsp"), frm=("DE", "EMS"), to=("NL", "CPO"))
    assert (status, env["status_code"], env["data"]["id"]) == (200, 1000, "L1")
    assert (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]) == ("DE", "EMS")
    assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == ("NL", "CPO")
    assert headers["x-correlation-id"] == "corr-1"


async def test_unknown_receiver_is_4001_from_the_hub(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, headers = await call("GET", url, net.token("emsp"), frm=("DE", "EMS"), to=("XX", "NOP"))
    assert (status, env["status_code"]) == (404, 4001)
    assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == ("NL", "HUB")
    assert (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]) == ("DE", "EMS")


async def test_a_forged_from_is_refused(cluster):
    net = await hub_network(cluster, {"cpo": CPO1, "emsp": EMSP1})
    url = net.url("emsp", "locations", "SENDER", "L1")
    status, env, _ = await call("GET", url, net.token("emsp"), frm=("NL", "CPO"), to=("NL", "CPO"))
    assert (status, env["status_code"]) == (400, 2001)
    assert "not one of your registered roles" in env["status_message"]
