"""The parties connected to a Hub, and their ConnectionStatus.

A party is one role of a registered platform (credentials.asciidoc: a
platform with several roles registers once, and each of its roles is a party
of the Hub). Its status is the platform's: the Hub checks liveness per
platform (one versions URL), and an operator suspends a platform.

Loaded from the parties table and kept for a second: every routed request
looks its receiver up here, and a few dozen to a few hundred platforms fit in
memory many times over. A change made in this process (a registration, a
status) is seen at once (`Directory.invalidate`); one made by another process
within the second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.ocpi.common import Role
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.ocpi.types import ci_key
from evroam.store import parties as party_repo
from evroam.store.parties import Party

Key = tuple[str, str]

# Broadcast Push goes to the "opposite role" (transport_and_format, "Broadcast
# Push"): a CPO's to eMSPs, NSPs and Other (Other is eMSP-like); anyone
# else's to CPOs only. NAP and SCSP are taken as eMSP-like too.
_EMSP_LIKE = frozenset({Role.EMSP, Role.NSP, Role.OTHER, Role.NAP, Role.SCSP})


def opposite(role: Role) -> frozenset[Role]:
    if role == Role.CPO:
        return _EMSP_LIKE
    return frozenset({Role.CPO}) if role in _EMSP_LIKE else frozenset()


def status_of(p: Party) -> ConnectionStatus:
    """A platform's ConnectionStatus: what the Hub set (OFFLINE, SUSPENDED, or
    CONNECTED again), else what its registration says."""
    if p.status == party_repo.UNREGISTERED:
        return ConnectionStatus.SUSPENDED
    if p.status != party_repo.REGISTERED:
        return ConnectionStatus.PLANNED
    return ConnectionStatus(p.hub_status) if p.hub_status else ConnectionStatus.CONNECTED


@dataclass(frozen=True, slots=True)
class HubParty:
    country_code: str
    party_id: str
    role: Role
    registration: Party
    status: ConnectionStatus

    @property
    def key(self) -> Key:
        return ci_key(self.country_code), ci_key(self.party_id)

    @property
    def connected(self) -> bool:
        return self.status == ConnectionStatus.CONNECTED

    def endpoint_url(self, module: str, iface: str) -> str | None:
        return self.registration.endpoint_url(module, iface)


class Directory:
    """Who is behind the Hub, by country_code/party_id."""

    def __init__(self, parties: Iterable[HubParty]) -> None:
        self.parties = list(parties)
        self._by_key: dict[Key, HubParty] = {}
        for p in self.parties:
            # A platform in use wins over a SUSPENDED one holding the same key.
            held = self._by_key.get(p.key)
            if held is None or (held.status == ConnectionStatus.SUSPENDED and p.status != held.status):
                self._by_key[p.key] = p

    @classmethod
    def of(cls, registrations: Iterable[Party]) -> Directory:
        out = []
        for reg in registrations:
            status = status_of(reg)
            for r in reg.roles or ():
                try:
                    role = Role(r.get("role", ""))
                except ValueError:
                    continue
                out.append(HubParty(r["country_code"], r["party_id"], role, reg, status))
        return cls(out)

    def find(self, cc: str | None, pid: str | None) -> HubParty | None:
        if not cc or not pid:
            return None
        return self._by_key.get((ci_key(cc), ci_key(pid)))

    def roles_of(self, registration_id: int) -> list[HubParty]:
        return [p for p in self.parties if p.registration.id == registration_id]

    def offering(self, module: str, iface: str, *, roles: Iterable[Role] | None = None,
                 exclude_registration: int | None = None, connected_only: bool = True) -> list[HubParty]:
        """The parties that implement `module`'s `iface` (their platform
        published that endpoint), one per platform and role, in registration
        order: the targets of a broadcast or the sources of a GET-all."""
        wanted = set(roles) if roles is not None else None
        out = []
        for p in self.parties:
            if p.registration.id == exclude_registration or not p.endpoint_url(module, iface):
                continue
            if wanted is not None and p.role not in wanted:
                continue
            if connected_only and not p.connected:
                continue
            out.append(p)
        return out


class DirectoryCache:
    """The Directory, reloaded when older than `ttl_s` or invalidated."""

    def __init__(self, engine: AsyncEngine, ttl_s: float = 1.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._held: Directory | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._held = None

    async def get(self) -> Directory:
        held = self._held
        if held is not None and time.monotonic() - self._at < self.ttl_s:
            return held
        async with self._lock:
            if self._held is not None and time.monotonic() - self._at < self.ttl_s:
                return self._held
            async with self.engine.connect() as conn:
                regs = await party_repo.list_all(conn)
            self._held, self._at = Directory.of(r for r in regs if r.status != party_repo.UNREGISTERED), \
                time.monotonic()
            return self._held
