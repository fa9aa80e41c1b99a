"""Routing headers on every functional answer (issue 8, 1.2): a direct
response carries TO = the requesting party and FROM = the receiving party
(transport_and_format, "Party to Party (without Hub)"), whether or not the
request carried routing headers, errors included; never on versions,
credentials, or to a caller we did not authenticate."""

from __future__ import annotations

from evroam.ocpi.locations import Location
from evroam.ocpi.pagination import join_url
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from tests.builders import location, session
from tests.nodes import wait_for
from tests.ocpi_calls import call, count, register, routing_of

PAST = "2000-01-01T00:00:00Z"
TARIFF = {"country_code": "NL", "party_id": "CPO", "id": "T1", "currency": "EUR",
          "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]}],
          "last_updated": "2026-01-01T00:00:00Z"}


async def test_every_answer_of_a_direct_connection_carries_both_parties(cluster):
    cpo, emsp, cpo_at_emsp, emsp_at_cpo = await register(cluster, [("CPO", "NL", "CPO")], [("EMSP", "DE", "EMS")])
    await cpo.publish("locations", Location.from_wire(location("L1")))
    await cpo.publish("tariffs", Tariff.from_wire(TARIFF))
    await cpo.publish("sessions", Session.from_wire(session(location_id="L1")))
    await wait_for(lambda: _count_is(emsp, "sessions", 1), what="S1 at the eMSP")
    from_cpo = ("NL", "CPO", "DE", "EMS")  # the eMSP asked the CPO
    from_emsp = ("DE", "EMS", "NL", "CPO")  # the CPO asked the eMSP

    def at_cpo(module: str, *path: str) -> str:
        return join_url(cpo_at_emsp.endpoint_url(module, "SENDER") or cpo_at_emsp.endpoint_url(module, "RECEIVER"),
                        *path)

    rx = emsp_at_cpo.endpoint_url("locations", "RECEIVER")
    asked_of_cpo = [  # (method, url, body, expected HTTP status, expected status_code)
        ("GET", at_cpo("locations"), None, 200, 1000),  # sender lists
        ("GET", at_cpo("tariffs"), None, 200, 1000),
        ("GET", at_cpo("sessions") + f"?date_from={PAST}", None, 200, 1000),
        ("GET", at_cpo("cdrs"), None, 200, 1000),
        ("GET", at_cpo("locations", "L1"), None, 200, 1000),
        ("GET", at_cpo("locations", "L404"), None, 404, 2000),  # an unknown object
        ("GET", at_cpo("locations", "L1", "E9"), None, 404, 2000),
        ("GET", at_cpo("sessions"), None, 200, 2001),  # date_from is required
        ("GET", at_cpo("locations") + "?limit=0", None, 200, 2001),
        ("DELETE", at_cpo("locations", "L1"), None, 405, 2000),
        ("GET", at_cpo("locations", "L1", "E1", "1", "x", "y"), None, 404, 2000),  # no such route
        ("POST", join_url(cpo_at_emsp.endpoint_url("commands", "RECEIVER"), "STOP_SESSION"),
         {"session_id": "S404", "response_url": "http://127.0.0.1:1/r"}, 200, 1000),
        ("POST", join_url(cpo_at_emsp.endpoint_url("commands", "RECEIVER"), "NOPE"), {}, 404, 2000),
        ("PUT", join_url(cpo_at_emsp.endpoint_url("tokens", "RECEIVER"), "DE", "EMS", "X"), {"uid": "X"}, 200, 2001),
        ("PUT", join_url(cpo_at_emsp.endpoint_url("tokens", "RECEIVER"), "DE", "EMS", "X") + "?type=rfid", {},
         200, 2001),
    ]
    asked_of_emsp = [
        ("PUT", join_url(rx, "NL", "CPO", "L2"), location("L2"), 201, 1000),  # receiver writes
        ("PUT", join_url(rx, "NL", "CPO", "L2"), location("L2"), 200, 1000),  # same version: kept
        ("PATCH", join_url(rx, "NL", "CPO", "L2"), {"name": "x", "last_updated": "2026-02-01T00:00:00Z"}, 200, 1000),
        ("PATCH", join_url(rx, "NL", "CPO", "L2", "E1"), {"status": "CHARGING", "last_updated": "2026-02-02T00:00:00Z"},
         200, 1000),
        ("PATCH", join_url(rx, "NL", "CPO", "L404"), {"name": "x", "last_updated": "2026-02-01T00:00:00Z"}, 404, 2000),
        ("GET", join_url(rx, "NL", "CPO", "L2"), None, 200, 1000),
        ("GET", join_url(rx, "FR", "OTH", "L2"), None, 404, 2000),  # not the caller's cc/pid
        ("PUT", join_url(rx, "NL", "CPO", "L3"), b"{not json", 400, 2000),
        ("PATCH", join_url(emsp_at_cpo.endpoint_url("sessions", "RECEIVER"), "NL", "CPO", "S1"),
         {"kwh": 2, "last_updated": "2026-02-01T00:00:00Z"}, 200, 1000),
        ("GET", join_url(emsp_at_cpo.endpoint_url("tokens", "SENDER")), None, 200, 1000),
        ("POST", join_url(emsp_at_cpo.endpoint_url("tokens", "SENDER"), "NOPE", "authorize"), None, 404, 2004),
    ]
    for asked, token, expected in ((asked_of_cpo, cpo_at_emsp.token_out, from_cpo),
                                   (asked_of_emsp, emsp_at_cpo.token_out, from_emsp)):
        for method, url, body, http, code in asked:
            status, env, headers = await call(method, url, token, body)
            assert (status, env["status_code"]) == (http, code), (method, url, env)
            assert routing_of(headers) == expected, (method, url, headers)
    # Never on configuration modules, and never to a caller we do not know.
    for url in (cpo.config.versions_url, f"{cpo.config.public_url}/ocpi/2.2.1/",
                cpo_at_emsp.endpoint_url("credentials")):
        status, env, headers = await call("GET", url, cpo_at_emsp.token_out)
        assert (status, routing_of(headers)) == (200, (None,) * 4), url
    for token in (None, "not-a-token"):
        status, env, headers = await call("GET", at_cpo("locations", "L404"), token)
        assert (status, routing_of(headers)) == (401, (None,) * 4)


async def _count_is(node, module: str, n: int) -> bool:
    return await count(node, module) == n


async def test_with_several_roles_each_side_answers_as_the_role_the_interface_belongs_to(cluster):
    a, b, a_at_b, b_at_a = await register(cluster, [("CPO", "NL", "ACP"), ("EMSP", "NL", "AEM")],
                                          [("CPO", "DE", "BCP"), ("EMSP", "DE", "BEM")])
    await a.publish("locations", Location.from_wire(location("L1", "NL", "ACP")))
    tok = a_at_b.token_out
    sender = a_at_b.endpoint_url("locations", "SENDER")
    receiver = a_at_b.endpoint_url("locations", "RECEIVER")
    # Without routing headers: A's Sender answers as A's CPO, to B's eMSP
    # (the role that receives locations); A's Receiver as A's eMSP, to B's CPO.
    _, _, h = await call("GET", sender, tok)
    assert routing_of(h) == ("NL", "ACP", "DE", "BEM")
    status, _, h = await call("PUT", join_url(receiver, "DE", "BCP", "L1"), tok, location("L1", "DE", "BCP"))
    assert (status, routing_of(h)) == (201, ("NL", "AEM", "DE", "BCP"))
    _, _, h = await call("GET", join_url(receiver, "DE", "BCP", "L404"), tok)
    assert routing_of(h) == ("NL", "AEM", "DE", "BCP")
    # Headers naming roles of each side are followed (case-insensitively,
    # answered in the registered spelling) ...
    named = {"OCPI-from-country-code": "de", "OCPI-from-party-id": "bcp",
             "OCPI-to-country-code": "NL", "OCPI-to-party-id": "AEM"}
    _, _, h = await call("GET", sender, tok, headers=named)
    assert routing_of(h) == ("NL", "AEM", "DE", "BCP")
    # ... a From naming someone else is not: TO is then the caller's own role,
    # and a To naming none of ours gives our role for the interface.
    strangers = {"OCPI-from-country-code": "BE", "OCPI-from-party-id": "BEC",
                 "OCPI-to-country-code": "FR", "OCPI-to-party-id": "XXX"}
    _, _, h = await call("GET", sender, tok, headers=strangers)
    assert routing_of(h) == ("NL", "ACP", "DE", "BEM")
    status, env, h = await call("DELETE", join_url(sender, "L1"), tok, headers=strangers)
    assert (status, routing_of(h)) == (405, ("NL", "ACP", "DE", "BEM"))
