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
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.module import REGISTRY, Module
from evroam.ocpi.versions import InterfaceRole
from evroam.background import Background
from evroam.client.ocpi import OcpiClient, OcpiResult, PartnerError
from evroam.ocpi.headers import Routing
from evroam.ocpi.pagination import join_url
from evroam.ocpi.types import parse_datetime, utcnow
from evroam.store import objects, outbox
from evroam.store import parties as party_repo
from evroam.store.outbox import Delivery

log = structlog.get_logger(__name__)

# How long a stopping worker spends recording answers and releasing its claims.
STOP_SETTLE_S = 10.0


@dataclass(slots=True)
class Outcome:
    error: str | None  # None: delivered (or found already held by the partner)
    unsure: bool = False  # the attempt may have reached the partner all the same
    whole: str | None = None  # the whole document the partner now holds, if known
    gone: bool = False  # the partner left: the delivery is dropped, not retried
    # Not sent, and not to be yet (its receiver is OFFLINE behind a Hub): kept
    # for later without counting as an attempt; `error` says why.
    held: bool = False


@dataclass(slots=True)
class Request:
    method: str
    url: str
    content: bytes
    params: dict[str, str] | None
    routing: Routing | None
    whole_url: str | None  # the whole object's URL, for a PUT after a PATCH's 404
    data: str  # the whole, latest object as stored
    version: str | None  # the last_updated this request carries


@dataclass(slots=True)
class Claimed:
    """A claimed row with what its send needs, read once the claim is held:
    a change made after that bumps the row's seq, so it is sent again."""

    delivery: Delivery
    party: party_repo.Party | None
    stored: objects.Stored | None


class DeliveryWorker:
    """Claims due rows in batches and keeps up to `concurrency` sends in
    flight over the shared keep-alive session (client/http.py). A claim tops
    the window up as soon as there is room, without waiting for the slowest
    send; answers are recorded by one recorder task, each batch in one
    transaction (group commit). A row is done only once that transaction
    commits: if we die before, the row is still claimed by us, and the next
    worker checks the partner's copy before sending it again (unsure)."""

    def __init__(self, engine: AsyncEngine, client: OcpiClient, *, max_attempts: int = 12,
                 base_backoff_s: float = 1.0, max_backoff_s: float = 3600.0, batch: int = 32,
                 concurrency: int = 32, idle_poll_s: float = 1.0, request_timeout_s: float = 30.0,
                 addressing: Addressing | None = None, hold_s: float = 60.0) -> None:
        self.engine = engine
        self.addressing = addressing or Addressing()
        # How long a held delivery waits before it is looked at again, when
        # no news (Node.on_client_info) makes it due sooner.
        self.hold_s = hold_s
        self.client = client
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch = batch
        self.concurrency = concurrency
        # Rows claimed and not yet recorded, at most: two claims' worth, so
        # the next rows are at hand when a send ends.
        self.window = 2 * batch
        self.idle_poll_s = idle_poll_s
        # A claim must outlive its wait for a send slot and the send itself
        # even when every call times out (a check and a send per delivery,
        # `concurrency` at a time): a lease running out under a live worker
        # would let another worker send the same row at the same time.
        self.lease_s = request_timeout_s * (2 * math.ceil(self.window / concurrency) + 1) + 10.0
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._loop = Background("outbox-delivery")
        self.delivered = 0
        # Unsure deliveries found already applied at the partner, so not sent again.
        self.already_held = 0
        # Partner names for log events, learnt from the rows each claim loads anyway.
        self._names: dict[int, str] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self._held = 0  # claimed by the running loop, not yet recorded
        self._on_wire: set[int] = set()  # ids of the rows being sent
        self._answers: list[tuple[Delivery, Outcome]] = []
        self._recording: list[tuple[Delivery, Outcome]] = []
        self._answered = asyncio.Event()
        self._closing = False  # _wind_down asked the recorder to stop between batches

    def notify(self) -> None:
        """Something was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    async def _claim(self, limit: int) -> list[Claimed]:
        async with self.engine.begin() as conn:
            claimed = await outbox.claim(conn, self.worker_id, limit, self.lease_s)
            if not claimed:
                return []
            stored = await objects.get_many_by_pk(conn, [d.object_pk for d in claimed])
            parties = {pid: await party_repo.get(conn, pid) for pid in sorted({d.party_id for d in claimed})}
        for party in parties.values():
            if party is not None:
                self._names[party.id] = party.name
        return [Claimed(d, parties[d.party_id], stored.get(d.object_pk)) for d in claimed]

    async def _deliver(self, c: Claimed) -> Outcome:
        async with self._sem:
            self._on_wire.add(c.delivery.id)
            try:
                return await self._attempt(c.delivery, c)
            finally:
                self._on_wire.discard(c.delivery.id)

    async def run_once(self) -> int:
        """One batch, claimed, sent and recorded before returning (tests, tools)."""
        claimed = await self._claim(self.batch)
        if claimed:
            outcomes = await asyncio.gather(*(self._deliver(c) for c in claimed))
            await self._record_many([(c.delivery, o) for c, o in zip(claimed, outcomes, strict=True)])
        return len(claimed)

    async def _record(self, d: Delivery, outcome: Outcome) -> None:
        await self._record_many([(d, outcome)])

    async def _record_many(self, answers: list[tuple[Delivery, Outcome]]) -> None:
        gone = [d for d, o in answers if o.gone]
        held = [(d, o.error or "") for d, o in answers if o.held and not o.gone]
        done = [(d, o.whole) for d, o in answers if not o.gone and not o.held and o.error is None]
        failed = [outbox.Failure(d, o.error, o.unsure) for d, o in answers
                  if not o.gone and not o.held and o.error is not None]
        async with self.engine.begin() as conn:
            await outbox.drop_many(conn, gone)
            await outbox.defer_many(conn, held, utcnow() + timedelta(seconds=self.hold_s))
            await outbox.complete_many(conn, done)
            statuses = await outbox.fail_many(conn, failed, self.max_attempts, self.base_backoff_s,
                                              self.max_backoff_s)
        self.delivered += len(done)
        for f, status in zip(failed, statuses, strict=True):
            d = f.delivery
            log.warning("delivery.failed", delivery=d.id, partner=self._names.get(d.party_id, d.party_id),
                        attempt=d.attempts + 1, status=status, error=f.error, unsure=f.unsure)

    async def _attempt(self, d: Delivery, claimed: Claimed | None = None) -> Outcome:
        try:
            if claimed is None:
                async with self.engine.connect() as conn:
                    claimed = Claimed(d, await party_repo.get(conn, d.party_id),
                                      await objects.get_by_pk(conn, d.object_pk))
            party, stored = claimed.party, claimed.stored
            if party is not None:
                self._names[party.id] = party.name
            if party is None or party.status == party_repo.UNREGISTERED:
                # Queued by a publish that raced the partner's removal, which drops the rest.
                return Outcome("partner unregistered", gone=True)
            if party.status != party_repo.REGISTERED or not party.token_out:
                return Outcome("partner not registered", d.unsure)
            if stored is None:
                return Outcome("object vanished", d.unsure)
            doc = json.loads(stored.data)
            held_back = await self.addressing.hold(party, d, doc)
            if held_back is not None:
                return held_back
            request = self._request(d, party, stored.data, doc, deleted=stored.stale)
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

    def _request(self, d: Delivery, party: party_repo.Party, data: str, doc: dict | None = None, *,
                 deleted: bool = False) -> Request | str:
        """What to send for `d`, from the object's state now: a deleted one
        (a tombstone) is DELETEd whatever was queued, and one published again
        after a queued DELETE is PUT whole."""
        base = party.endpoint_url(d.module, "RECEIVER")
        if not base:
            return f"partner has no {d.module} receiver endpoint"
        module = REGISTRY[d.module]
        doc = json.loads(data) if doc is None else doc
        routing = self.addressing.routing(party, module, doc)
        if d.method == "POST":
            return Request(d.method, base, data.encode(), None, routing, None, data, None)
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
        sending: set[asyncio.Task[None]] = set()
        recorder = asyncio.ensure_future(self._recorder())
        try:
            await self._claim_loop(sending)
        finally:
            await self._wind_down(sending, recorder)

    async def _claim_loop(self, sending: set[asyncio.Task[None]]) -> None:
        while True:
            self._wake.clear()
            room = self.window - self._held
            wait: float | None = self.idle_poll_s
            if room >= self.batch:  # half the window is free: top it up
                try:
                    claimed = await self._claim(room)
                except Exception:
                    log.exception("delivery.loop_error")
                    claimed = []
                for c in claimed:
                    self._held += 1
                    task = asyncio.ensure_future(self._send_and_queue(c))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                if len(claimed) == room:
                    continue  # more may be due: claim again once there is room
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _send_and_queue(self, c: Claimed) -> None:
        outcome = await self._deliver(c)
        self._answers.append((c.delivery, outcome))
        self._answered.set()

    async def _recorder(self) -> None:
        """Records the answers gathered while the previous batch committed."""
        failures = 0
        while True:
            await self._answered.wait()
            self._answered.clear()
            if self._closing:
                return  # between batches: _wind_down records what is left
            if not self._answers:
                continue
            self._recording, self._answers = self._answers, []
            try:
                await self._record_many(self._recording)
            except Exception:
                # Kept and recorded later: the rows stay claimed meanwhile,
                # and no more are claimed while the window is full.
                log.exception("delivery.record_failed", rows=len(self._recording))
                self._answers[:0], self._recording = self._recording, []
                failures += 1
                await asyncio.sleep(min(30.0, 0.1 * 2 ** failures))
                self._answered.set()
                continue
            failures = 0
            self._held -= len(self._recording)
            self._recording = []
            self._wake.set()  # room in the window, and released rows may be due again

    async def _wind_down(self, sending: set[asyncio.Task[None]], recorder: asyncio.Future[None]) -> None:
        """On stop: the answers already in are recorded, and the rows still
        claimed are released for the next worker: those on the wire as
        unsure, so they are checked at the partner before they go again."""
        on_wire = set(self._on_wire)
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        # The recorder finishes the batch it is committing rather than being
        # cancelled inside it: a transaction cut off mid-statement on
        # PostgreSQL can keep its row locks until its connection is closed,
        # and the release below would wait on them.
        self._closing = True
        self._answered.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(recorder), STOP_SETTLE_S)
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        # A batch cut off mid-commit is recorded again: each step is a no-op
        # on a row already settled.
        answers, self._recording, self._answers = self._recording + self._answers, [], []
        try:
            # Bounded: a stop never hangs. What is not settled here stays
            # claimed until its lease runs out, and is delivered again then.
            await asyncio.wait_for(self._settle(answers, on_wire), STOP_SETTLE_S)
        except Exception:
            log.exception("delivery.stop_record_failed", rows=len(answers))
        self._held = 0
        self._on_wire.clear()
        self._closing = False

    async def _settle(self, answers: list[tuple[Delivery, Outcome]], on_wire: set[int]) -> None:
        await self._record_many(answers)
        async with self.engine.begin() as conn:
            await outbox.release_claims(conn, self.worker_id, on_wire)

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


def partner_key(party: party_repo.Party, module: Module | None = None) -> tuple[str, str] | None:
    """The partner's role a delivery of `module` is addressed to: the one
    that implements its Receiver, else its first role (a Hub's only role)."""
    roles = party.roles or ()
    for r in roles:
        if module is not None and REGISTRY.plays(r.get("role", ""), module.id, InterfaceRole.RECEIVER):
            return r["country_code"], r["party_id"]
    return (roles[0]["country_code"], roles[0]["party_id"]) if roles else None


class Addressing:
    """Who a delivery is from and to, and whether it goes now. This one is
    a direct connection's: FROM = the object's owner (one of our roles), TO =
    the partner's role that receives the module; no routing headers on a
    configuration module (HubClientInfo). A Hub and a party behind a Hub
    plug in their own (hub/, sync/)."""

    def routing(self, party: party_repo.Party, module: Module, doc: dict) -> Routing | None:
        if not module.routed:
            return None
        return Routing(doc.get("country_code", ""), doc.get("party_id", ""),
                       *(partner_key(party, module) or (None, None)))

    async def hold(self, party: party_repo.Party, d: Delivery, doc: dict) -> Outcome | None:
        """An Outcome that settles `d` without sending it (dropped, or kept
        for later), or None to send it now."""
        return None
