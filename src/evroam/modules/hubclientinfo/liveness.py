"""Liveness on a Hub (mod_hub_client_info, "Hub Interface"): a platform
silent for `silence_s` is checked with a GET of its versions URL, with its
token; `FAILURES` failures in a row make it OFFLINE, and a later success
CONNECTED again, each pushed to every connected party (owner.set_status).

Silence is measured in this process: the Hub layer records every functional
request it authenticates (Hub.seen), and a successful check counts as heard
from. An OFFLINE platform is checked at every round, silent or not: a request
from it does not show that we can reach it. SUSPENDED is the operator's and
is never checked. A leader duty: one process per database runs it
(node.py), so each change is pushed once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from evroam.background import Background, every
from evroam.hub.layer import Hub
from evroam.modules.hubclientinfo import owner
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.store import parties as party_repo
from evroam.store.parties import Party

log = structlog.get_logger(__name__)

FAILURES = 3  # checks in a row that fail before a platform is OFFLINE


class Liveness:
    def __init__(self, node: Any, hub: Hub, *, silence_s: float, interval_s: float) -> None:
        self.node = node
        self.hub = hub
        self.silence_s = silence_s
        self.interval_s = interval_s
        self.failures: dict[int, int] = {}
        self._since = time.monotonic()
        self._loop = Background("hub-liveness")

    def start(self) -> None:
        # Silence counts from when this process took the duty, not from a request it never could see.
        self._since = time.monotonic()
        self._loop.start(lambda: every(self.interval_s, self.check, event="hub.liveness_failed"))

    async def stop(self) -> None:
        await self._loop.stop()

    def due(self, party: Party, status: ConnectionStatus, now: float) -> bool:
        if party.status != party_repo.REGISTERED or not party.versions_url or not party.token_out:
            return False
        if status == ConnectionStatus.OFFLINE:
            return True
        heard = max(self.hub.last_seen.get(party.id, self._since), self._since)
        return status == ConnectionStatus.CONNECTED and now - heard >= self.silence_s

    async def check(self) -> None:
        """One round: check every platform that is due, at once."""
        directory = await self.hub.directory.get()
        now = time.monotonic()
        platforms = {p.registration.id: (p.registration, p.status) for p in directory.parties}
        due = [(reg, st) for reg, st in platforms.values() if self.due(reg, st, now)]
        if due:
            await asyncio.gather(*(self._check_one(reg, st) for reg, st in due))

    async def _check_one(self, party: Party, status: ConnectionStatus) -> None:
        ok = await self.probe(party)
        if ok:
            self.hub.seen(party.id)
            self.failures.pop(party.id, None)
            if status == ConnectionStatus.OFFLINE:
                await owner.set_status(self.node, party.id, ConnectionStatus.CONNECTED,
                                       only_from={ConnectionStatus.OFFLINE})
            return
        if status != ConnectionStatus.CONNECTED:
            return
        failed = self.failures[party.id] = self.failures.get(party.id, 0) + 1
        log.info("hub.liveness_check_failed", party=party.name, failures=failed)
        if failed >= FAILURES:
            self.failures.pop(party.id, None)
            await owner.set_status(self.node, party.id, ConnectionStatus.OFFLINE,
                                   only_from={ConnectionStatus.CONNECTED})

    async def probe(self, party: Party) -> bool:
        """GET the platform's versions with its token: any OCPI success will do."""
        try:
            await asyncio.wait_for(self.node.client.get_ok(party.versions_url, party.token_out, party_id=party.id,
                                                           partner=party.name, raw_token=party.allow_raw_token),
                                   timeout=max(self.interval_s, 1.0) * FAILURES)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused, timed out, not OCPI: all the same to liveness
            log.debug("hub.liveness_unreachable", party=party.name, error=f"{type(exc).__name__}: {exc}")
            return False
