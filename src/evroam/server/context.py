"""What the server needs from the node that assembles it.

The handshake itself lives in `modules/credentials/handshake.py` (above this layer); the server only
knows the shape of the service it calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.ocpi.common import Role
from evroam.ocpi.credentials import Credentials
from evroam.ocpi.versions import Endpoint
from evroam.hooks import Hooks
from evroam.config import DEFAULT_MAX_BODY_BYTES, LocationLimits
from evroam.store.parties import Authenticated




class CredentialsService(Protocol):
    def our_credentials(self, token: str) -> Credentials: ...

    async def accept_registration(self, auth: Authenticated, creds: Credentials, version: str) -> Credentials: ...

    async def accept_update(self, auth: Authenticated, creds: Credentials, version: str) -> Credentials: ...

    async def accept_unregistration(self, auth: Authenticated) -> None: ...


@dataclass(slots=True)
class ServerContext:
    engine: AsyncEngine
    public_url: str
    credentials: CredentialsService
    # Module endpoints published in version details, besides credentials.
    endpoints: list[Endpoint] = field(default_factory=list)
    page_limit: int = 100
    hooks: Hooks = field(default_factory=Hooks)
    # Our own roles as (role, COUNTRY, PARTY) upper-cased.
    roles: list[tuple[Role, str, str]] = field(default_factory=list)
    # Request bodies larger than this are refused with 413 (server/middleware.BodyLimit).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    location_limits: LocationLimits = field(default_factory=LocationLimits)
    # Run when the node stops: what the app opened besides the engine (server/fastpath.py).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def our_keys(self, role: Role) -> set[tuple[str, str]]:
        return {(cc, pid) for r, cc, pid in self.roles if r == role}

    def url(self, *path: str) -> str:
        return "/".join([self.public_url.rstrip("/"), *(p.strip("/") for p in path)])

    def endpoint_url(self, *path: str) -> str:
        """A URL we publish in versions and version details: with a trailing
        slash, as every URL in the spec's examples, because 2.2.1 clients build
        `{url}{country_code}/…` (served with or without it)."""
        return self.url(*path) + "/"
