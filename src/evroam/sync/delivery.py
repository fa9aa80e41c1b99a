"""The outbox worker: delivers the latest state of each changed object.

Retries back off exponentially with jitter and survive restarts (the outbox
is in the database). After `max_attempts` a delivery is dead-lettered; an
operator puts it back with `evroam partners retry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.client.ocpi import OcpiClient, PartnerError, Routing
from evroam.ocpi.pagination import join_url
from evroam.store import objects, outbox
from evroam.store import parties as party_repo
from evroam.store.outbox import Delivery

log = structlog.get_logger(__name__)


class DeliveryWorker:
    def __init__(self, engine: AsyncEngine, client: OcpiClient, *, max_attempts: int = 12,
                 base_backoff_s: float = 1.0, max_backoff_s: float = 3600.0, batch: int = 100,
                 concurrency: int = 16, idle_poll_s: float = 1.0) -> None:
        self.engine = engine
        self.client = client
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch = batch
        self.concurrency = concurrency
        self.idle_poll_s = idle_poll_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0

    def notify(self) -> None:
        """Something was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        async with self.engine.begin() as conn:
            claimed = await outbox.claim(conn, self.worker_id, self.batch)
        if not claimed:
            return 0
        # One object's deliveries to one partner never run concurrently (the
        # unique pending row guarantees one per object); different objects do.
        sem = asyncio.Semaphore(self.concurrency)

        async def one(d: Delivery) -> None:
            async with sem:
                error = await self._attempt(d)
                await self._record(d, error)

        await asyncio.gather(*(one(d) for d in claimed))
        return len(claimed)

    async def _record(self, d: Delivery, error: str | None) -> None:
        # Committed right after the partner's answer, not once per batch: the
        # only way a delivery reaches a partner twice is our process dying
        # between that answer and this commit, so the window is kept to
        # milliseconds (and our receivers treat such a repeat as a no-op).
        async with self.engine.begin() as conn:
            if error is None:
                await outbox.complete(conn, d)
                self.delivered += 1
            else:
                status = await outbox.fail(conn, d, error, self.max_attempts, self.base_backoff_s,
                                           self.max_backoff_s)
                log.warning("delivery.failed", delivery=d.id, party_id=d.party_id, attempt=d.attempts + 1,
                            status=status, error=error)

    async def _attempt(self, d: Delivery) -> str | None:
        """Send one delivery; None on success, else why it failed."""
        try:
            async with self.engine.connect() as conn:
                party = await party_repo.get(conn, d.party_id)
                stored = await objects.get_by_pk(conn, d.object_pk)
            if party is None or party.status != party_repo.REGISTERED or not party.token_out:
                return "partner not registered"
            if stored is None:
                return "object vanished"
            return await self._send(d, party, stored.data)
        except Exception as exc:  # a bug here must not kill the worker
            log.exception("delivery.crashed", delivery=d.id)
            return f"{type(exc).__name__}: {exc}"

    async def _send(self, d: Delivery, party: party_repo.Party, data: str) -> str | None:
        base = party.endpoint_url(d.module, "RECEIVER")
        if not base:
            return f"partner has no {d.module} receiver endpoint"
        doc = json.loads(data)
        routing = Routing(doc.get("country_code", ""), doc.get("party_id", ""),
                          *(_partner_key(party) or (None, None)))
        params = None
        if d.method == "POST":
            url, content = base, data.encode()
        else:
            id_field = "uid" if d.module == "tokens" else "id"
            url = join_url(base, doc["country_code"], doc["party_id"], doc[id_field], d.sub_path or "")
            if d.module == "tokens":
                params = {"type": doc["type"]}
            content = data.encode() if d.method == "PUT" else json.dumps(d.patch).encode()
        try:
            result = await self.client.request(d.method, url, party.token_out, content=content, party_id=party.id,
                                               raw_token=party.allow_raw_token, routing=routing, params=params)
            if d.method == "PATCH" and result.http_status == 404:
                # The partner lacks the object (it registered later, or lost
                # it): A6.3's remedy is a PUT of the whole, latest object.
                url = join_url(base, doc["country_code"], doc["party_id"], doc[id_field])
                result = await self.client.request("PUT", url, party.token_out, content=data.encode(),
                                                   party_id=party.id, raw_token=party.allow_raw_token,
                                                   routing=routing, params=params)
        except PartnerError as exc:
            return exc.message
        if not result.ok():
            return (f"{d.method} {url}: HTTP {result.http_status}, OCPI {result.status_code} "
                    f"{result.envelope.status_message or ''}").rstrip()
        return None

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
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="outbox-delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


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
