"""HubClientInfo: a Hub pushes ClientInfo to a connected CPO (Receiver GET and
PUT at {cc}/{pid}); the Hub serves the list (Sender GET, paginated)."""

from __future__ import annotations

import pytest

from tests.ocpi_calls import call, count, register

pytestmark = pytest.mark.asyncio

CPO = [("CPO", "NL", "CPO")]
HUB = [("HUB", "NL", "HUB")]
EMSP = [("EMSP", "DE", "EMS")]


def client_info(cc: str = "DE", pid: str = "EMS", status: str = "CONNECTED",
                updated: str = "2026-01-01T00:00:00Z") -> dict:
    return {"country_code": cc, "party_id": pid, "role": "EMSP", "status": status, "last_updated": updated}


async def test_a_hub_pushes_client_info_to_a_cpo(cluster) -> None:
    cpo, hub, cpo_at_hub, _ = await register(cluster, CPO, HUB)
    url = cpo_at_hub.endpoint_url("hubclientinfo", "RECEIVER")
    assert url == f"{cpo.config.public_url}/ocpi/2.2.1/receiver/hubclientinfo/"
    token = cpo_at_hub.token_out

    status, body, _ = await call("PUT", url + "DE/EMS", token, client_info())
    assert (status, body["status_code"]) == (201, 1000)
    status, body, _ = await call("GET", url + "de/ems", token)
    assert (status, body["status_code"]) == (200, 1000)
    assert body["data"] == client_info()

    status, body, _ = await call("PUT", url + "DE/EMS", token, client_info(status="OFFLINE",
                                                                           updated="2026-01-02T00:00:00Z"))
    assert (status, body["status_code"]) == (200, 1000)
    status, body, _ = await call("PUT", url + "DE/EMS", token, client_info(status="CONNECTED"))
    assert (status, body["status_code"], body["status_message"]) == (200, 1000,
                                                                     "older than the stored version; kept")
    status, body, _ = await call("GET", url + "DE/EMS", token)
    assert body["data"]["status"] == "OFFLINE"
    assert await count(cpo, "hubclientinfo") == 1


async def test_the_url_and_body_must_name_the_same_party(cluster) -> None:
    cpo, hub, cpo_at_hub, _ = await register(cluster, CPO, HUB)
    url = cpo_at_hub.endpoint_url("hubclientinfo", "RECEIVER")
    status, body, _ = await call("PUT", url + "DE/XYZ", cpo_at_hub.token_out, client_info())
    assert (status, body["status_code"]) == (200, 2001)
    assert "party_id" in body["status_message"]
    status, body, _ = await call("GET", url + "DE/EMS", cpo_at_hub.token_out)
    assert (status, body["status_code"]) == (404, 2000)
    assert await count(cpo, "hubclientinfo") == 0


async def test_only_a_hub_may_push_client_info(cluster) -> None:
    cpo, emsp, cpo_at_emsp, _ = await register(cluster, CPO, EMSP)
    base = cpo_at_emsp.endpoint_url("locations", "SENDER").split("/sender/")[0]
    status, body, _ = await call("PUT", f"{base}/receiver/hubclientinfo/DE/EMS", cpo_at_emsp.token_out,
                                 client_info())
    assert (status, body["status_code"]) == (404, 2000)
    assert "HUB" in body["status_message"]
    assert await count(cpo, "hubclientinfo") == 0


async def test_the_hub_serves_the_list(cluster) -> None:
    hub, cpo, hub_at_cpo, _ = await register(cluster, HUB, CPO)
    assert hub_at_cpo.endpoint_url("hubclientinfo", "SENDER") == f"{hub.config.public_url}/ocpi/2.2.1/sender/hubclientinfo/"
    from evroam.ocpi.hubclientinfo import ClientInfo

    for pid in ("AAA", "BBB", "CCC"):
        await hub.publish("hubclientinfo", ClientInfo.from_wire(client_info(pid=pid)))
    url = hub_at_cpo.endpoint_url("hubclientinfo", "SENDER")
    status, body, headers = await call("GET", url + "?limit=2", hub_at_cpo.token_out)
    assert (status, body["status_code"]) == (200, 1000)
    # The CPO's own ClientInfo first: the Hub published it when the CPO registered.
    assert [c["party_id"] for c in body["data"]] == ["CPO", "AAA"]
    assert headers["x-total-count"] == "4"
    assert "offset=2" in headers["link"]


async def test_only_a_hub_publishes_client_info(cluster) -> None:
    from evroam.ocpi.hubclientinfo import ClientInfo
    from evroam.sync.own import Refused

    cpo = await cluster.node("cpo", CPO)
    with pytest.raises(Refused, match="only a node with a HUB role publishes these"):
        await cpo.publish("hubclientinfo", ClientInfo.from_wire(client_info()))
    assert await count(cpo, "hubclientinfo", ours=True) == 0
