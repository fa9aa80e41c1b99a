"""Repository of partners and the tokens we issued them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.ocpi.types import utcnow
from evroam.store.tables import parties, party_tokens

INVITED = "INVITED"
REGISTERING = "REGISTERING"
REGISTERED = "REGISTERED"
UNREGISTERED = "UNREGISTERED"

TOKEN_A = "A"
TOKEN_PENDING = "PENDING"
TOKEN_ACTIVE = "ACTIVE"


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values we issue, so a fast unsalted hash is
    # enough to make a stolen database useless; it also keeps lookup indexed.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Party:
    id: int
    name: str
    status: str
    initiated_by_us: bool
    versions_url: str | None
    version: str | None
    endpoints: list[dict[str, Any]] | None
    roles: list[dict[str, Any]] | None
    token_out: str | None
    allow_raw_token: bool
    created_at: datetime
    updated_at: datetime
    hub_status: str | None = None
    hub_status_at: datetime | None = None

    @classmethod
    def from_row(cls, row: sa.Row) -> Party:
        m = row._mapping
        return cls(**{f: m[f] for f in cls.__slots__})

    def endpoint_url(self, identifier: str, role: str | None = None) -> str | None:
        for ep in self.endpoints or ():
            if ep["identifier"] == identifier and (role is None or ep["role"] == role):
                return ep["url"]
        return None


@dataclass(slots=True)
class Authenticated:
    party: Party
    token_kind: str
    token_hash: str


async def get(conn: AsyncConnection, party_id: int) -> Party | None:
    row = (await conn.execute(sa.select(parties).where(parties.c.id == party_id))).first()
    return Party.from_row(row) if row else None


async def by_name(conn: AsyncConnection, name: str) -> Party | None:
    row = (await conn.execute(sa.select(parties).where(parties.c.name == name))).first()
    return Party.from_row(row) if row else None


async def list_all(conn: AsyncConnection) -> list[Party]:
    rows = (await conn.execute(sa.select(parties).order_by(parties.c.id))).all()
    return [Party.from_row(r) for r in rows]


def _url_key(url: str | None) -> str | None:
    return url.rstrip("/").lower() if url else None


def _role_keys(roles: list[dict[str, Any]] | None) -> set[str]:
    return {(r["country_code"] + "/" + r["party_id"]).upper() for r in roles or ()}


async def registered_twin(conn: AsyncConnection, versions_urls: tuple[str | None, ...],
                          roles: list[dict[str, Any]], exclude: int) -> Party | None:
    """The REGISTERED partner (other than `exclude`) that is the same party as
    a new registration: same versions URL, or a country_code/party_id in common.

    A match on the URL wins over one on the roles, then the oldest partner.
    UNREGISTERED partners are history, not partners we hold: never matched.
    """
    urls = {k for k in map(_url_key, versions_urls) if k}
    keys = _role_keys(roles)
    held = [p for p in await list_all(conn) if p.status == REGISTERED and p.id != exclude]
    by_url = [p for p in held if _url_key(p.versions_url) in urls]
    if by_url:
        return by_url[0]
    return next((p for p in held if _role_keys(p.roles) & keys), None)


async def create(conn: AsyncConnection, *, name: str, status: str, initiated_by_us: bool,
                 allow_raw_token: bool = False, versions_url: str | None = None) -> int:
    now = utcnow()
    result = await conn.execute(
        parties.insert().values(
            name=name, status=status, initiated_by_us=initiated_by_us, allow_raw_token=allow_raw_token,
            versions_url=versions_url, created_at=now, updated_at=now,
        )
    )
    return int(result.inserted_primary_key[0])


async def update(conn: AsyncConnection, party_id: int, **values: Any) -> None:
    values["updated_at"] = utcnow()
    await conn.execute(parties.update().where(parties.c.id == party_id).values(**values))


async def add_token(conn: AsyncConnection, party_id: int, token: str, kind: str) -> None:
    await conn.execute(
        party_tokens.insert().values(token_hash=hash_token(token), party_id=party_id, kind=kind, created_at=utcnow())
    )


async def drop_token(conn: AsyncConnection, token_hash: str) -> int:
    result = await conn.execute(party_tokens.delete().where(party_tokens.c.token_hash == token_hash))
    return result.rowcount or 0


async def drop_tokens(conn: AsyncConnection, party_id: int, kinds: tuple[str, ...] | None = None) -> None:
    stmt = party_tokens.delete().where(party_tokens.c.party_id == party_id)
    if kinds is not None:
        stmt = stmt.where(party_tokens.c.kind.in_(kinds))
    await conn.execute(stmt)


async def move_tokens(conn: AsyncConnection, from_id: int, to_id: int) -> None:
    await conn.execute(party_tokens.update().where(party_tokens.c.party_id == from_id).values(party_id=to_id))


async def promote_pending(conn: AsyncConnection, party_id: int) -> None:
    """The partner accepted our new token: it replaces the active one."""
    await drop_tokens(conn, party_id, (TOKEN_ACTIVE, TOKEN_A))
    await conn.execute(
        party_tokens.update()
        .where(party_tokens.c.party_id == party_id, party_tokens.c.kind == TOKEN_PENDING)
        .values(kind=TOKEN_ACTIVE)
    )


_AUTH_COLUMNS = [parties, party_tokens.c.kind, party_tokens.c.token_hash]
_AUTH_JOIN = sa.select(*_AUTH_COLUMNS).join_from(party_tokens, parties, party_tokens.c.party_id == parties.c.id)
# Built once, for one or two presented forms: every request runs one of these.
_AUTH_BY_HASHES = (
    _AUTH_JOIN.where(party_tokens.c.token_hash == sa.bindparam("h0")),
    _AUTH_JOIN.where(party_tokens.c.token_hash.in_([sa.bindparam("h0"), sa.bindparam("h1")])),
)


async def authenticate(conn: AsyncConnection, decoded: str | None, raw: str | None) -> Authenticated | None:
    """Find the partner behind a presented token.

    The Base64-decoded form is the 2.2.1 rule. The raw form is honoured only for
    partners configured for it (older implementations send the token as is).
    """
    candidates = {}
    if decoded:
        candidates[hash_token(decoded)] = False
    if raw and raw != decoded:
        candidates.setdefault(hash_token(raw), True)
    if not candidates:
        return None
    hashes = list(candidates)
    rows = (await conn.execute(_AUTH_BY_HASHES[len(hashes) - 1], dict(zip(("h0", "h1"), hashes, strict=False)))).all()
    for row in sorted(rows, key=lambda r: candidates[r.token_hash]):
        if candidates[row.token_hash] and not row.allow_raw_token:
            continue
        return Authenticated(Party.from_row(row), row.kind, row.token_hash)
    return None


async def delete(conn: AsyncConnection, party_id: int) -> None:
    await conn.execute(parties.delete().where(parties.c.id == party_id))
