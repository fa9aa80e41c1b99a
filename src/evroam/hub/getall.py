"""GET All via the Hub (transport_and_format, "GET All via Hubs";
docs/hub/getall.md): a Sender-interface list GET with TO = the Hub merges
the lists of every connected party that offers that Sender interface.

- The sources are `Directory.offering(...)`, in directory order; their lists
  are concatenated in that order, each object as its source sent it (its
  own country_code/party_id name its owner).
- The caller's offset/limit select a window of the concatenation. The Hub
  walks the sources in order and asks each only for the part of the window
  it holds, so it never holds more than one page of the merged list; the
  sources after the window are asked for their X-Total-Count only.
- Each source is asked with its own token, FROM = the caller (so a source
  that shows each party only its own objects filters for the caller) and
  TO = the source. A source that fails or times out is skipped: the answer
  still comes, its status_message names the skipped parties, and the merged
  X-Total-Count leaves them out.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic_core import from_json, to_json

from evroam.hub.directory import HubParty
from evroam.hub.forward import send_to
from evroam.hub.layer import Answer, Hub, HubRefusal, Routed
from evroam.ocpi import headers as H
from evroam.ocpi.envelope import envelope_bytes
from evroam.ocpi.pagination import DEFAULT_MAX_LIMIT, PageRequest, next_link, parse_page_request
from evroam.ocpi.status import OcpiError, StatusCode
from evroam.ocpi.versions import InterfaceRole

# The caller's filters that go on to every source as they were sent.
PASSED_ON = ("date_from", "date_to")


class Skipped(Exception):
    """A source left out of this answer, and why."""


@dataclasses.dataclass(slots=True)
class Shown:
    """What one source showed: its objects inside the window, and how many it holds."""

    objects: list[Any]
    count: int


async def get_all(hub: Hub, r: Routed) -> Answer:
    page_limit = hub.node.config.page_limit if hub.node is not None else DEFAULT_MAX_LIMIT
    params = dict(parse_qsl(r.query, keep_blank_values=True))
    try:
        # A Sender that requires date_from of a first pull requires it of us too.
        page = parse_page_request(params, page_limit, "date_from" in r.module.pull_params)
    except OcpiError as exc:
        raise HubRefusal(exc.status_code, exc.message, exc.http_status) from None
    walk = Walk(hub, r, {k: params[k] for k in PASSED_ON if params.get(k)}, page_limit)
    directory = await hub.directory.get()
    sources = directory.offering(r.module.id, InterfaceRole.SENDER.value, exclude_registration=r.caller.id)
    window: list[Any] = []
    total = 0
    skipped: list[str] = []
    tail: list[HubParty] = []
    for src in sources:
        if len(window) >= page.limit:
            tail.append(src)
            continue
        try:
            shown = await walk.source(src, max(0, page.offset - total), page.limit - len(window))
        except Skipped as exc:
            skipped.append(f"{src.country_code}/{src.party_id} ({exc})")
            continue
        window += shown.objects
        total += shown.count
    for src, counted in zip(tail, await asyncio.gather(*(walk.count(s) for s in tail)), strict=True):
        if isinstance(counted, Skipped):
            skipped.append(f"{src.country_code}/{src.party_id} ({counted})")
        else:
            total += counted
    return answer(hub, r, page, page_limit, window, total, skipped)


def answer(hub: Hub, r: Routed, page: PageRequest, page_limit: int, window: Sequence[Any], total: int,
           skipped: Sequence[str]) -> Answer:
    """The merged page, with the headers our own Senders give (server/paging.py)."""
    message = "parties left out: " + "; ".join(skipped) if skipped else None
    body = envelope_bytes(to_json(list(window)), 1000, message)
    # The Link repeats the caller's path (its trailing slash too) and filters.
    slash = "/" if r.scope.get("raw_path", b"").endswith(b"/") else ""
    public = hub.endpoint_url(r.version, r.module.id, r.iface) + slash + ("?" + r.query if r.query else "")
    headers = [(b"content-type", b"application/json"),
               (H.TOTAL_COUNT.lower().encode(), str(total).encode()),
               (H.LIMIT.lower().encode(), str(page_limit).encode())]
    link = next_link(public, page, total)
    if link:
        headers.append((H.LINK.lower().encode(), link.encode("latin-1")))
    return Answer(200, body, headers + hub.routing_answer(r.sender))


@dataclasses.dataclass(slots=True)
class Page:
    """One source's answer to one GET."""

    objects: list[Any]
    total: int | None  # its X-Total-Count, None when absent or not a count
    more: bool  # it sent a Link to a next page


@dataclasses.dataclass(slots=True)
class Walk:
    """Asking the sources for one caller's page."""

    hub: Hub
    r: Routed
    filters: dict[str, str]
    page_limit: int

    async def ask(self, src: HubParty, offset: int, limit: int) -> Page:
        """One GET of `src`'s list (Skipped if it fails)."""
        query = urlencode({**self.filters, "offset": str(offset), "limit": str(limit)})
        try:
            got = await send_to(self.hub, dataclasses.replace(self.r, query=query, body=b""), src, src.key)
        except HubRefusal as exc:
            if exc.status_code == StatusCode.HUB_TIMEOUT:
                raise Skipped(f"no answer within {self.hub.forward_timeout_s:g} s") from None
            raise Skipped("could not be reached" if exc.status_code == StatusCode.HUB_CONNECTION_PROBLEM
                          else exc.message) from None
        try:
            env = from_json(got.body)
        except ValueError:
            raise Skipped(f"HTTP {got.http_status}, no OCPI envelope") from None
        code = env.get("status_code") if isinstance(env, dict) else None
        if got.http_status != 200 or code != 1000:
            raise Skipped(f"HTTP {got.http_status}, OCPI {code}")
        data = env.get("data")
        # A list answered as one object is tolerated, as client/ocpi.py's paginate does.
        if isinstance(data, dict):
            data = [data]
        elif data is None:
            data = []
        elif not isinstance(data, list):
            raise Skipped("its data is not a list")
        headers = dict(got.headers)
        return Page(data, _count(headers.get(H.TOTAL_COUNT.encode())), bool(headers.get(H.LINK.encode())))

    async def source(self, src: HubParty, skip: int, need: int) -> Shown:
        """`src`'s objects from its `skip`-th, at most `need` of them, and its count."""
        page = await self.ask(src, skip, need)
        if page.total is None:
            return await self.uncounted(src, skip, need)
        objects, total = page.objects, page.total
        expected = max(0, min(need, total - skip))
        if len(objects) > expected:
            # It ignored limit or offset: when it sent its whole list, the Hub
            # takes the window's part itself.
            start = skip if len(objects) >= total else 0
            return Shown(objects[start:start + expected], total)
        while objects and len(objects) < need and skip + len(objects) < total:
            # Its own page limit is below ours: ask on from where it stopped.
            page = await self.ask(src, skip + len(objects), need - len(objects))
            if not page.objects or page.total is None:
                break
            objects += page.objects[:need - len(objects)]
            total = page.total
        return Shown(objects, total)

    async def uncounted(self, src: HubParty, skip: int, need: int) -> Shown:
        """A source without X-Total-Count: counted by reading it, a page at a
        time from the start, as long as it sends a Link to a next page;
        only the window's part is kept."""
        kept: list[Any] = []
        at, first = 0, None
        while True:
            page = await self.ask(src, at, self.page_limit)
            if page.objects and at and page.objects[0] == first:
                raise Skipped("it ignores offset and sends no X-Total-Count")
            kept += page.objects[max(0, skip - at):max(0, skip + need - at)]
            at += len(page.objects)
            if not page.objects or not page.more or len(page.objects) > self.page_limit:
                return Shown(kept[:need], at)
            first = page.objects[0]

    async def count(self, src: HubParty) -> int | Skipped:
        """How many objects `src` holds (a source after the window)."""
        try:
            page = await self.ask(src, 0, 1)
            return page.total if page.total is not None else (await self.uncounted(src, 0, 0)).count
        except Skipped as exc:
            return exc


def _count(raw: bytes | None) -> int | None:
    try:
        value = int(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is None or value >= 0 else None
