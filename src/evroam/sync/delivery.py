"""The outbox worker: delivers the latest state of each changed object.

Retries back off exponentially with jitter and survive restarts (the outbox
is in the database). After `max_attempts` a delivery is dead-lettered; an
operator puts it back with `evroam partners retry`.

When an attempt may have reached the partner without us learning the outcome
(our process died mid-request, a timeout, a dropped connection), the row is
marked unsure, and before sending it again the worker GETs the partner's copy:
if the partner already holds this version, it is not sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import socket
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.module import REGISTRY
from evroam.background import Background
from evroam.client.ocpi import OcpiClient, OcpiResult, PartnerError
from evroam.ocpi.headers import Routing
from evroam.ocpi.pagination import join_url
from evroam.ocpi.types import parse_datetime
from evroam.store import objects, outbox
from evroam.store import parties as party_repo
from evroam.store.outbox import Delivery

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Outcome:
    error: str | None  # None: delivered (or found already held by the partner)
    unsure: bool = False  # the attempt may have reached the partner all the same
    whole: str | None = None  # the whole document the partner now holds, if known
    gone: bool = False  # the partner left: the delivery is dropped, not retried


@dataclass(slots=True)
class Request:
    method: str
    url: str
    content: bytes
    params: dict[str, str] | None
    routing: Routing
    whole_url: str | None  # the whole object's URL, for a PUT after a PATCH's 404
    data: str  # the whole, latest object as stored
    version: str | None  # the last_updated this request carries


class DeliveryWorker:
    def __init__(self, engine: AsyncEngine, client: OcpiClient, *, max_attempts: int = 12,
                 base_backoff_s: float = 1.0, max_backoff_s: float = 3600.0, batch: int = 32,
                 concurrency: int = 16, idle_poll_s: float = 1.0, request_timeout_s: float = 30.0) -> None:
        self.engine = engine
        self.client = client
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch = batch
        self.concurrency = concurrency
        self.idle_poll_s = idle_poll_s
        # A claim must outlive the whole batch even when every call times out
        # (a check and a send per delivery, `concurrency` at a time): a lease
        # running out under a live worker would let another worker send the
        # same row at the same time.
        self.lease_s = request_timeout_s * (2 * math.ceil(batch / concurrency) + 1) + 10.0
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._loop = Background("outbox-delivery")
        self.delivered = 0
        # Unsure deliveries found already applied at the partner, so not sent again.
        self.already_held = 0
        # Partner names for log events, learnt from the rows each attempt loads anyway.
        self._names: dict[int, str] = {}

    def notify(self) -> None:
        """Something was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        async with self.engine.begin() as conn:
            claimed = await outbox.claim(conn, self.worker_id, self.batch, self.lease_s)
        if not claimed:
            return 0
        # One object's deliveries to one partner never run concurrently (the
        # unique pending row guarantees one per object); different objects do.
        sem = asyncio.Semaphore(self.concurrency)

        async def one(d: Delivery) -> None:
            async with sem:
                outcome = await self._attempt(d)
                await self._record(d, outcome)

        await asyncio.gather(*(one(d) for d in claimed))
        return len(claimed)

    async def _record(self, d: Delivery, outcome: Outcome) -> None:
        # Committed right after the partner's answer, not once per batch, so
        # the window in which our death leaves a delivery unsure is kept to
        # milliseconds; an unsure one is checked at the partner before it is
        # sent again (`_attempt`).
        async with self.engine.begin() as conn:
            if outcome.gone:
                await outbox.drop(conn, d)
            elif outcome.error is None:
                await outbox.complete(conn, d, outcome.whole)
                self.delivered += 1
            else:
                status = await outbox.fail(conn, d, outcome.error, self.max_attempts, self.base_backoff_s,
                                           self.max_backoff_s, unsure=outcome.unsure)
                log.warning("delivery.failed", delivery=d.id, partner=self._names.get(d.party_id, d.party_id),
                            attempt=d.attempts + 1, status=status, error=outcome.error, unsure=outcome.unsure)

    async def _attempt(self, d: Delivery) -> Outcome:
        try:
            async with self.engine.connect() as conn:
                party = await party_repo.get(conn, d.party_id)
                stored = await objects.get_by_pk(conn, d.object_pk)
            if party is not None:
                self._names[party.id] = party.name
            if party is None or party.status == party_repo.UNREGISTERED:
                # Queued by a publish that raced the partner's removal, which drops the rest.
                return Outcome("partner unregistered", gone=True)
            if party.status != party_repo.REGISTERED or not party.token_out:
                return Outcome("partner not registered", d.unsure)
            if stored is None:
                return Outcome("object vanished", d.unsure)
            request = self._request(d, party, stored.data, deleted=stored.stale)
            if isinstance(request, str):
                return Outcome(request, d.unsure)
            if d.unsure:
                held = await self._partner_holds(party, request)
                if held is None:
                    return Outcome("could not check the partner's copy before sending again", True)
                if held:
                    self.already_held += 1
                    log.info("delivery.already_held", delivery=d.id, partner=party.name, url=request.url)
                    return Outcome(None, whole=request.data if request.method == "PUT" else None)
            return await self._send(party, request)
        except Exception as exc:  # a bug here must not kill the worker
            log.exception("delivery.crashed", delivery=d.id)
            return Outcome(f"{type(exc).__name__}: {exc}", True)

    def _request(self, d: Delivery, party: party_repo.Party, data: str, *, deleted: bool = False) -> Request | str:
        """What to send for `d`, from the object's state now: a deleted one
        (a tombstone) is DELETEd whatever was queued, and one published again
        after a queued DELETE is PUT whole."""
        base = party.endpoint_url(d.module, "RECEIVER")
        if not base:
            return f"partner has no {d.module} receiver endpoint"
        doc = json.loads(data)
        routing = Routing(doc.get("country_code", ""), doc.get("party_id", ""),
                          *(_partner_key(party) or (None, None)))
        if d.method == "POST":
            return Request(d.method, base, data.encode(), None, routing, None, data, None)
        module = REGISTRY[d.module]
        whole = join_url(base, *module.url_parts(doc))
        url = join_url(whole, d.sub_path) if d.sub_path else whole
        params = module.url_params(doc)
        if deleted:
            return Request("DELETE", whole, b"", params, routing, whole, data, None)
        if d.method in ("PUT", "DELETE"):
            return Request("PUT", whole, data.encode(), params, routing, whole, data, doc.get("last_updated"))
        return Request("PATCH", url, json.dumps(d.patch).encode(), params, routing, whole, data,
                       (d.patch or {}).get("last_updated"))

    async def _call(self, party: party_repo.Party, req: Request, method: str, url: str,
                    content: bytes | None = None) -> OcpiResult:
        return await self.client.request(method, url, party.token_out, content=content, party_id=party.id, partner=party.name,
                                         raw_token=party.allow_raw_token, routing=req.routing, params=req.params)

    async def _partner_holds(self, party: party_repo.Party, req: Request) -> bool | None:
        """Does the partner already hold the version we are about to send?

        Asked only when an earlier attempt may have reached it. Every receiver
        interface but CDRs' lets the owner GET its object back "for
        validation purposes" (mod_locations 8.2.1); the partner's copy can
        only have come from us, so a last_updated at or after ours means our
        version arrived. Where it cannot be told (CDRs: their receiver URL is
        whatever the partner answered to the POST we lost; a partner without
        a working GET), we send again: a repeat is safer than a loss, and a
        spec-conforming receiver treats it as a no-op.

        A DELETE has arrived when the partner no longer has the object (404).

        None: the partner could not be asked (try again later).
        """
        if req.method == "DELETE":
            try:
                return (await self._call(party, req, "GET", req.url)).http_status == 404
            except PartnerError:
                return None
        if req.method == "POST" or not req.version:
            return False
        try:
            result = await self._call(party, req, "GET", req.url)
        except PartnerError:
            return None
        data = result.single()
        if not result.ok() or not isinstance(data, dict) or "last_updated" not in data:
            # 404 / 2003: the partner lacks the object, so the lost attempt
            # did not land. Anything else: it cannot be told; send.
            return False
        try:
            return parse_datetime(data["last_updated"]) >= parse_datetime(req.version)
        except ValueError:
            return False

    async def _send(self, party: party_repo.Party, req: Request) -> Outcome:
        whole = req.method in ("PUT", "POST")
        try:
            result = await self._call(party, req, req.method, req.url, req.content or None)
            if req.method == "DELETE" and result.http_status == 404:
                return Outcome(None)  # the partner lacks it: what a DELETE is for
            if req.method == "PATCH" and result.http_status == 404:
                # The partner lacks the object (it registered later, or lost
                # it): A6.3's remedy is a PUT of the whole, latest object.
                result = await self._call(party, req, "PUT", req.whole_url, req.data.encode())
                whole = True
        except PartnerError as exc:
            return Outcome(exc.message, exc.maybe_applied)
        if not result.ok():
            # The partner answered and refused: it did not apply it.
            return Outcome((f"{req.method} {req.url}: HTTP {result.http_status}, OCPI {result.status_code} "
                            f"{result.envelope.status_message or ''}").rstrip())
        return Outcome(None, whole=req.data if whole else None)

    async def run(self) -> None:
        try:
            async with self.engine.begin() as conn:
                released = await outbox.release_orphans(conn, socket.gethostname(), _pid_alive)
            if released:
                log.info("delivery.released_orphaned_claims", rows=released)
        except Exception:
            log.exception("delivery.release_orphans_failed")
        while True:
            try:
                n = await self.run_once()
            except Exception:
                log.exception("delivery.loop_error")
                n = 0
            if n == 0:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_poll_s)

    def start(self) -> None:
        self._loop.start(self.run)

    async def stop(self) -> None:
        await self._loop.stop()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _partner_key(party: party_repo.Party) -> tuple[str, str] | None:
    for r in party.roles or ():
        return r["country_code"], r["party_id"]
    return None
