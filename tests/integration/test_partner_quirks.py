"""Partners' faults evroam copes with (issue 8, part 2), against a scripted
partner with the quirks of the independent implementation (tests/quirks.py):

1. a `Link` header that cannot be followed, an empty one, or none although
   X-Total-Count says there is more: we page on with offset/limit, say so in
   the pull's result, and the delta watermark is set as after any full pull;
2. one object wrapped in a list (`data: [obj]`) in AuthorizationInfo,
   CommandResponse, GET-one and PUT replies;
3. errors without an OCPI envelope reported as their HTTP status and body.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.types import format_datetime
from evroam.modules.credentials.handshake import HandshakeError
from evroam.store.tables import objects, outbox
from evroam.sync.pull import last_success
from tests.quirks import FORBIDDEN, QuirkyPartner, envelope, later

EMSP = [("EMSP", "DE", "EMS")]
CPO = [("CPO", "NL", "CPO")]
PAGES = [{}, *({"offset": str(o), "limit": "50"} for o in (50, 100, 150, 200))]
FORBIDDEN_BODY = '{"detail":"Not authenticated"}'


async def held(node, party_id: int) -> dict[str, str]:
    """Location id -> address of what the node holds (not stale) from a partner."""
    async with node.engine.connect() as conn:
        rows = (await conn.execute(sa.select(objects.c.data).where(
            objects.c.module == "locations", objects.c.owner_id == party_id, objects.c.stale.is_(False)))).all()
    docs = [json.loads(r.data) for r in rows]
    return {d["id"]: d["address"] for d in docs}


def quirks(logs: list[dict], name: str) -> list[dict]:
    return [e for e in logs if e["event"] == "partner.quirk" and e["quirk"] == name]


# --- 2.1 pagination --------------------------------------------------------------------------


async def test_broken_link_pages_on_by_offset_and_the_next_delta_pull_uses_the_watermark(cluster):
    """The peer's Link (https, Enum reprs, date_from=None) is never followed:
    all 250 arrive by offset/limit, the watermark is set, and the next delta
    pull asks date_from=watermark on every page, the offset pages included."""
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner(link="broken") as fake:
        party = await emsp.handshake.register(fake.versions_url, "token-a")
        with capture_logs() as logs:
            first = await emsp.pull(party.name, "locations")
        assert (first.error, first.stored, first.invalid, first.foreign) == (None, 250, [], 0)
        assert first.paging == "paged with offset/limit against X-Total-Count: its Link is not under the endpoint URL"
        assert fake.list_calls() == PAGES
        assert len(await held(emsp, party.id)) == 250
        assert [q.get("partner") for q in quirks(logs, "unusable_link")] == [party.name]  # once, by name
        watermark = await last_success(emsp.engine, party.id, "locations")
        assert watermark is not None

        moved = [f"LOC{i:03d}" for i in range(100, 220)]
        fake.touch(moved, later())
        fake.calls.clear()
        second = await emsp.pull(party.name, "locations")
        since = format_datetime(watermark)
        assert (second.error, second.stored, second.full) == (None, 120, False)
        assert second.paging is not None
        assert fake.list_calls() == [{"date_from": since},
                                     {"date_from": since, "offset": "50", "limit": "50"},
                                     {"date_from": since, "offset": "100", "limit": "50"}]
        addresses = await held(emsp, party.id)
        assert sorted(oid for oid, a in addresses.items() if a.endswith("(moved)")) == moved
        assert await last_success(emsp.engine, party.id, "locations") > watermark


async def test_an_empty_link_on_the_last_page_ends_the_pull(cluster):
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner(link="empty_last") as fake:
        party = await emsp.handshake.register(fake.versions_url, "token-a")
        result = await emsp.pull(party.name, "locations", full=True)
    assert (result.error, result.stored, result.paging, result.marked_stale) == (None, 250, None, 0)
    # Every page but the first came from the partner's Link.
    assert fake.list_calls() == PAGES
    assert await last_success(emsp.engine, party.id, "locations") is not None


async def test_no_link_while_x_total_count_says_more_pages_on_by_offset(cluster):
    """Without Link, the pull used to end after the first page as if complete."""
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner(link="none") as fake:
        party = await emsp.handshake.register(fake.versions_url, "token-a")
        result = await emsp.pull(party.name, "locations", full=True)
    assert (result.error, result.stored) == (None, 250)
    assert result.paging == ("paged with offset/limit against X-Total-Count: "
                             "it sent no Link though X-Total-Count says there is more")
    assert fake.list_calls() == PAGES
    assert len(await held(emsp, party.id)) == 250


async def test_a_link_that_fails_is_replaced_by_offset_paging(cluster):
    """A Link under the endpoint URL is followed; when it fails (the peer's
    date_from=None answered 422 without an envelope), the same page is asked
    for by offset, with the original filters."""
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner(link="failing") as fake:
        party = await emsp.handshake.register(fake.versions_url, "token-a")
        result = await emsp.pull(party.name, "locations")
        url = fake.url("locations")
        assert (result.error, result.stored) == (None, 250)
        assert result.paging.startswith(
            "paged with offset/limit against X-Total-Count: following its Link failed "
            f"(GET {url}?offset=50&limit=50&date_from=None answered HTTP 422 Unprocessable Entity: "
            '{"detail":[{"loc":["query","date_from"]')
        assert fake.list_calls() == [{}, {"offset": "50", "limit": "50", "date_from": "None"},
                                     {"offset": "50", "limit": "50"}, {"offset": "100", "limit": "50"},
                                     {"offset": "150", "limit": "50"}, {"offset": "200", "limit": "50"}]
        # A delta pull keeps its date_from on the offset pages.
        watermark = await last_success(emsp.engine, party.id, "locations")
        fake.touch(["LOC007"], later())
        fake.calls.clear()
        delta = await emsp.pull(party.name, "locations")
    assert (delta.error, delta.stored, delta.paging) == (None, 1, None)
    assert fake.list_calls() == [{"date_from": format_datetime(watermark)}]


async def test_pages_that_run_out_before_x_total_count_fail_the_pull_and_keep_the_watermark(cluster):
    """An incomplete set is not the new truth: nothing is marked stale and the
    watermark stays where the last complete pull put it."""
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner(link="broken") as fake:
        party = await emsp.handshake.register(fake.versions_url, "token-a")
        assert (await emsp.pull(party.name, "locations", full=True)).error is None
        watermark = await last_success(emsp.engine, party.id, "locations")
        for oid in [f"LOC{i:03d}" for i in range(240, 250)]:
            del fake.locations[oid]
        fake.total_excess = 60
        result = await emsp.pull(party.name, "locations", full=True)
        url = fake.url("locations")
    assert result.error == f"GET {url} returned no objects at offset 240, though X-Total-Count is 300"
    assert (result.stored, result.marked_stale) == (240, 0)
    assert len(await held(emsp, party.id)) == 250
    assert await last_success(emsp.engine, party.id, "locations") == watermark


async def test_offset_paging_with_a_partner_that_ignores_offset_fails_the_pull(cluster):
    """Without Link and with offsets ignored, paging on would loop (or end
    with 250 copies of 50 objects and mark the other 200 stale)."""
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner(link="broken") as fake:
        fake.ignore_offset = True
        party = await emsp.handshake.register(fake.versions_url, "token-a")
        result = await emsp.pull(party.name, "locations", full=True)
        url = fake.url("locations")
    assert result.error == f"GET {url} ignores offset: the page at offset 50 repeats the previous one"
    assert (result.stored, result.marked_stale) == (50, 0)
    assert await last_success(emsp.engine, party.id, "locations") is None


# --- 2.2 one object wrapped in a list ---------------------------------------------------------


def auth_info(allowed: str = "ALLOWED", uid: str = "TOK1") -> dict:
    return {"allowed": allowed, "token": {
        "country_code": "DE", "party_id": "XWE", "uid": uid, "type": "RFID", "contract_id": "DE-XWE-C1",
        "issuer": "quirky", "valid": True, "whitelist": "ALLOWED_OFFLINE", "last_updated": "2026-01-01T00:00:00Z"}}


def emsp_fake() -> QuirkyPartner:
    return QuirkyPartner("EMSP", "DE", "XWE", modules=[("tokens", "SENDER"), ("tariffs", "RECEIVER")], locations=0)


async def test_authorization_info_wrapped_in_a_list_is_used(cluster):
    """A valid ALLOWED answered as `data: [info]` used to deny the token."""
    cpo = await cluster.node("cpo", CPO, run_workers=False)
    async with emsp_fake() as fake:
        await cpo.handshake.register(fake.versions_url, "token-a")
        fake.replies["authorize"] = (200, envelope([auth_info()]))
        with capture_logs() as logs:
            decision = await cpo.authorize("TOK1", location_id="LOC1")
            again = await cpo.authorize("TOK1")
        assert (decision.allowed, decision.source, decision.reason) == (True, "realtime", "the eMSP answered ALLOWED")
        assert decision.token.uid == "TOK1"
        assert len(quirks(logs, "single_object_as_list")) == 1  # logged once for this partner
        assert "party_id" not in quirks(logs, "single_object_as_list")[0]  # operators know partners by name

        fake.replies["authorize"] = (200, envelope([auth_info(), auth_info()]))
        # TOK1 is cached now (ALLOWED_OFFLINE): an unusable answer lets the cache decide, and says why.
        twice = await cpo.authorize("TOK1")
    assert (again.allowed, again.source) == (True, "realtime")
    assert (twice.allowed, twice.source) == (True, "cache-offline-fallback")
    assert twice.reason == ("whitelist ALLOWED_OFFLINE and the eMSP gave no answer (unusable answer "
                            "(HTTP 200, OCPI 1000): data is a list of 2 items, not one AuthorizationInfo)")


def start_session() -> dict:
    token = {"country_code": "DE", "party_id": "EMS", "uid": "APP-42", "type": "APP_USER",
             "contract_id": "DE-EMS-C42", "issuer": "eMSP", "valid": True, "whitelist": "ALLOWED",
             "last_updated": "2026-01-01T00:00:00Z"}
    return {"token": token, "location_id": "LOC001"}


async def test_command_response_wrapped_in_a_list_is_accepted(cluster):
    """An ACCEPTED answered as `data: [response]` used to be stored as ERROR
    "HTTP 200, OCPI 1000 Generic success code"."""
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner(modules=[("commands", "RECEIVER")], locations=0) as fake:
        party = await emsp.handshake.register(fake.versions_url, "token-a")
        uid = await emsp.send_command(party.name, "START_SESSION", start_session())
        accepted = await emsp.command(uid)
        fake.replies["commands"] = (200, envelope())
        uid = await emsp.send_command(party.name, "START_SESSION", start_session())
        empty = await emsp.command(uid)
        fake.replies["commands"] = (200, envelope([{"result": "ACCEPTED", "timeout": 30}, {"result": "REJECTED"}]))
        uid = await emsp.send_command(party.name, "START_SESSION", start_session())
        two = await emsp.command(uid)
    assert (accepted.state, accepted.response, accepted.timeout, accepted.message) == ("ACCEPTED", "ACCEPTED", 30,
                                                                                        None)
    assert (empty.state, empty.status_code) == ("ERROR", 1000)
    assert empty.message == ("HTTP 200, OCPI 1000 Generic success code, but the answer is unusable: "
                             "data is missing, not one CommandResponse")
    assert two.message == ("HTTP 200, OCPI 1000 Generic success code, but the answer is unusable: "
                           "data is a list of 2 items, not one CommandResponse")


def tariff(updated: str = "2026-02-01T00:00:00Z") -> dict:
    return {"country_code": "NL", "party_id": "CPO", "id": "T1", "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
            "last_updated": updated}


async def _outbox(node) -> list[tuple]:
    async with node.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(
            sa.select(outbox.c.status, outbox.c.last_error, outbox.c.unsure))).all()]


async def test_put_reply_and_the_delivery_check_get_wrapped_in_a_list(cluster):
    """A PUT answered `data: [obj]` is delivered; an unsure delivery's check
    GET answered `data: [obj]` finds the partner holds it, so it is not sent again."""
    cpo = await cluster.node("cpo", CPO, run_workers=False)
    async with emsp_fake() as fake:
        await cpo.handshake.register(fake.versions_url, "token-a")
        await cpo.publish("tariffs", Tariff.from_wire(tariff()))
        with capture_logs() as logs:
            assert await cpo.delivery.run_once() == 1
        assert await _outbox(cpo) == []
        assert len(quirks(logs, "single_object_as_list")) == 1
        path = "/2.2.1/tariffs/NL/CPO/T1"
        assert fake.held[path]["last_updated"] == "2026-02-01T00:00:00Z"

        # The next version reached the partner, but we never learnt it did.
        await cpo.publish("tariffs", Tariff.from_wire(tariff("2026-02-02T00:00:00Z")))
        fake.held[path] = {**fake.held[path], "last_updated": "2026-02-02T00:00:00Z"}
        async with cpo.engine.begin() as conn:
            await conn.execute(outbox.update().values(unsure=True))
        fake.calls.clear()
        assert await cpo.delivery.run_once() == 1
    assert [(m, p) for m, p, _ in fake.calls] == [("GET", path)]
    assert cpo.delivery.already_held == 1
    assert await _outbox(cpo) == []


# --- 2.3 errors without an OCPI envelope -------------------------------------------------------


async def test_errors_without_an_envelope_are_reported_as_http_status_and_body(cluster):
    """403 {"detail": ...} everywhere it is surfaced: a pull, a command, a
    real-time authorization and a delivery."""
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    cpo = await cluster.node("cpo", CPO, run_workers=False)
    async with QuirkyPartner(modules=[("locations", "SENDER"), ("commands", "RECEIVER")]) as cpo_fake, \
            emsp_fake() as emsp_fake_:
        at_cpo = await emsp.handshake.register(cpo_fake.versions_url, "token-a")
        await cpo.handshake.register(emsp_fake_.versions_url, "token-a")
        cpo_fake.forbid = emsp_fake_.forbid = True

        pulled = await emsp.pull(at_cpo.name, "locations")
        uid = await emsp.send_command(at_cpo.name, "START_SESSION", start_session())
        command = await emsp.command(uid)
        decision = await cpo.authorize("TOK1")
        await cpo.publish("tariffs", Tariff.from_wire(tariff()))
        assert await cpo.delivery.run_once() == 1
        locations, commands = cpo_fake.url("locations"), cpo_fake.url("commands")
        tariffs, tokens = emsp_fake_.url("tariffs"), emsp_fake_.url("tokens")
    assert pulled.error == f"GET {locations} answered HTTP 403 Forbidden: {FORBIDDEN_BODY}"
    assert (command.state, command.message) == (
        "ERROR", f"POST {commands}/START_SESSION answered HTTP 403 Forbidden: {FORBIDDEN_BODY}")
    assert (decision.allowed, decision.reason) == (
        False, "unknown token (asked 1 partner(s) in real time); no usable answer from "
               f"de-xwe: POST {tokens}/TOK1/authorize answered HTTP 403 Forbidden: {FORBIDDEN_BODY}")
    # A refusal: the partner did not apply it, so no check GET before the retry.
    assert await _outbox(cpo) == [
        ("PENDING", f"PUT {tariffs}/NL/CPO/T1 answered HTTP 403 Forbidden: {FORBIDDEN_BODY}", False)]


async def test_handshake_errors_without_an_envelope_show_status_and_a_bounded_body(cluster):
    emsp = await cluster.node("emsp", EMSP, run_workers=False)
    async with QuirkyPartner() as fake:
        fake.replies["versions"] = (403, FORBIDDEN)
        with pytest.raises(HandshakeError) as forbidden:
            await emsp.handshake.register(fake.versions_url, "token-a")
        page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body></html>"
        fake.replies["versions"] = (502, page)
        with pytest.raises(HandshakeError) as gateway:
            await emsp.handshake.register(fake.versions_url, "token-a")
    assert (forbidden.value.status_code, forbidden.value.message) == (
        3001, f"cannot use the versions endpoint: GET {fake.versions_url} answered HTTP 403 Forbidden: "
              f"{FORBIDDEN_BODY}")
    excerpt = gateway.value.message.split("answered HTTP 502 Bad Gateway: ", 1)[1]
    assert excerpt == page[:200] + "…"
