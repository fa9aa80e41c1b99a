"""Token authorization on the CPO side (mod_tokens, "Real-time authorization"
and WhitelistType).

`authorize()` answers "may this token charge here?" from the token cache (the
tokens eMSPs pushed to us or we pulled), asking the eMSP in real time where the
token's `whitelist` requires it:

- ALWAYS: the cache decides (valid → allowed); never a real-time call.
- ALLOWED: the spec lets the CPO choose; we choose the cache. The eMSP marked
  the token fit for whitelisting, a cache hit costs no round trip at the
  charge point, and an eMSP that wants a say per session uses ALLOWED_OFFLINE
  or NEVER.
- ALLOWED_OFFLINE: real time. Only when no usable answer comes (unreachable,
  timeout, no envelope, HTTP 5xx or a 3xxx/4xxx code) does the cache decide.
  An HTTP 404 is an answer, envelope or not: the spec's "the eMSP does not
  know the Token", so the token is not allowed.
- NEVER: real time, always; no answer means not allowed.
The whitelist applies whatever `valid` says: a cached valid=false token with
NEVER or ALLOWED_OFFLINE is still asked about, its state may have changed.

A token not in the cache (or only in a copy a full pull marked stale, or held
for a partner that is no longer registered) is asked about in real time. The
token's uid tells nothing about its eMSP, so we ask every registered partner
that publishes a tokens Sender endpoint, one after the other: partners with an
EMSP role first, then the others (a Hub), each group in registration order.
The first that knows the token (anything but HTTP 404, with or without an
OCPI body, or 2004) decides; asking one at a time keeps an eMSP from seeing
authorizations for tokens it never issued more than once per miss. The token
a real-time answer carries goes into the cache, so the next authorization
knows its eMSP.

Through a Hub partner (docs/hub/behind.md) a cached token's call goes with
TO = its eMSP (the token's country_code/party_id); an unknown token's goes
without TO, an Open Routing Request the Hub routes to the eMSP whose Token it
holds from its Broadcast Push.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.client.ocpi import OcpiClient, PartnerError, UnusableReply
from evroam.ocpi.common import Role
from evroam.ocpi.headers import Routing
from evroam.modules.tokens import MODULE as TOKENS
from evroam.ocpi.pagination import join_url
from evroam.ocpi.status import StatusCode
from evroam.ocpi.tokens import AllowedType, AuthorizationInfo, LocationReferences, Token, TokenType, WhitelistType
from evroam.ocpi.types import ci_key
from evroam.modules.events import Received
from evroam.server.routing import is_hub
from evroam.store import objects as repo
from evroam.store import parties as party_repo
from evroam.store.parties import Party
from evroam.store.tables import OURS, objects
from evroam.sync.publish import object_key

log = structlog.get_logger(__name__)

CACHE = "cache"
REALTIME = "realtime"
OFFLINE_FALLBACK = "cache-offline-fallback"

DEFAULT_TIMEOUT_S = 5.0

# Partners already logged for answering "unknown token" with a bare HTTP 404 (a quirk, logged once).
_BARE_404_LOGGED: set[int] = set()


@dataclass(slots=True)
class Decision:
    allowed: bool
    source: str  # CACHE | REALTIME | OFFLINE_FALLBACK
    reason: str
    info: AuthorizationInfo | None = None  # the eMSP's answer, when it was asked and answered
    token: Token | None = None  # the token as the eMSP last described it (cache or answer)
    party: str | None = None  # the eMSP partner that owns or decided it

    @property
    def allowed_type(self) -> AllowedType | None:
        return self.info.allowed if self.info else None

    @property
    def authorization_reference(self) -> str | None:
        return self.info.authorization_reference if self.info else None

    @property
    def location(self) -> LocationReferences | None:
        """Where (which EVSEs) the eMSP allowed charging, when it was asked with a location."""
        return self.info.location if self.info else None


class _NoAnswer(Exception):
    """The eMSP gave no usable answer: the "offline" of ALLOWED_OFFLINE."""


class _Refused(Exception):
    """The eMSP answered with a client error about our request (not 2002/2004)."""


@dataclass(slots=True)
class _Cached:
    token: Token
    party: Party


async def authorize(node: Any, uid: str, type: TokenType | str = TokenType.RFID,
                    location_id: str | None = None, evse_uids: Iterable[str] | None = None, *,
                    timeout: float = DEFAULT_TIMEOUT_S) -> Decision:
    """Decide whether token (uid, type) may charge, at `location_id`/`evse_uids` if given.

    `timeout` bounds each real-time call: a driver is waiting at the charge point.
    """
    type_ = TokenType(type).value
    evses = list(evse_uids) if evse_uids else None
    if evses and location_id is None:
        raise ValueError("evse_uids need a location_id")
    location = LocationReferences(location_id=location_id, evse_uids=evses) if location_id is not None else None
    engine: AsyncEngine = node.engine
    client: OcpiClient = node.client
    cached = await _lookup(engine, uid, type_)
    if cached is None:
        return await _unknown(node, client, uid, type_, location, timeout)
    token, party = cached.token, cached.party
    whitelist = token.whitelist
    if whitelist in (WhitelistType.ALWAYS, WhitelistType.ALLOWED):
        return _from_cache(token, party, CACHE, f"whitelist {whitelist.value}: decided from the cache")
    try:
        decision = await _ask(node, client, party, uid, type_, location, timeout, (token.country_code,
                                                                                     token.party_id))
    except _NoAnswer as exc:
        if whitelist == WhitelistType.ALLOWED_OFFLINE:
            return _from_cache(token, party, OFFLINE_FALLBACK,
                               f"whitelist ALLOWED_OFFLINE and the eMSP gave no answer ({exc})")
        return Decision(False, REALTIME, f"whitelist NEVER and the eMSP gave no answer ({exc})",
                        token=token, party=party.name)
    except _Refused as exc:
        return Decision(False, REALTIME, str(exc), token=token, party=party.name)
    if decision is None:
        return Decision(False, REALTIME, "the eMSP no longer knows this token (404/2004)", token=token,
                        party=party.name)
    return decision


def _from_cache(token: Token, party: Party, source: str, why: str) -> Decision:
    if token.valid:
        return Decision(True, source, why, token=token, party=party.name)
    return Decision(False, source, why + "; the token is not valid", token=token, party=party.name)


async def _lookup(engine: AsyncEngine, uid: str, type_: str) -> _Cached | None:
    """The freshest cached copy held for a registered partner. Should two eMSPs
    both claim a uid, the most recently updated copy wins."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(objects.c.owner_id, objects.c.data)
            .where(objects.c.module == TOKENS.id, objects.c.owner_id != OURS, objects.c.oid_key == ci_key(uid),
                   objects.c.type_key == type_, objects.c.stale.is_(False))
            .order_by(objects.c.last_updated.desc(), objects.c.id.desc()))).all()
        for row in rows:
            party = await party_repo.get(conn, row.owner_id)
            if party is not None and party.status == party_repo.REGISTERED:
                return _Cached(Token.from_wire(row.data), party)
    return None


def _emsp_candidates(parties: list[Party]) -> list[Party]:
    usable = [p for p in parties if p.status == party_repo.REGISTERED and p.token_out
              and p.endpoint_url(TOKENS.id, "SENDER")]
    return sorted(usable, key=lambda p: (not _has_role(p, Role.EMSP), p.id))


def _has_role(party: Party, role: Role) -> bool:
    return any(r.get("role") == role.value for r in party.roles or ())


async def _unknown(node: Any, client: OcpiClient, uid: str, type_: str, location: LocationReferences | None,
                   timeout: float) -> Decision:
    async with node.engine.connect() as conn:
        candidates = _emsp_candidates(await party_repo.list_all(conn))
    if not candidates:
        return Decision(False, CACHE, "unknown token, and no partner offers real-time authorization")
    silent: list[str] = []
    for party in candidates:
        try:
            decision = await _ask(node, client, party, uid, type_, location, timeout, _partner_key(party))
        except (_NoAnswer, _Refused) as exc:
            silent.append(f"{party.name}: {exc}")
            continue
        if decision is not None:
            return decision
    reason = f"unknown token (asked {len(candidates)} partner(s) in real time)"
    if silent:
        reason += "; no usable answer from " + "; ".join(silent)
    return Decision(False, REALTIME, reason)


def _partner_key(party: Party) -> tuple[str, str] | None:
    if is_hub(party):
        # Whose token it is, we do not know: an Open Routing Request, which
        # the Hub routes to the eMSP whose Token it holds (docs/hub/open-routing.md).
        return None
    roles = sorted(party.roles or (), key=lambda r: r.get("role") != Role.EMSP.value)
    return (roles[0]["country_code"], roles[0]["party_id"]) if roles else None


def _our_key(node: Any) -> tuple[str, str]:
    roles = sorted(node.config.roles, key=lambda r: r.role != Role.CPO)
    return roles[0].country_code, roles[0].party_id


async def _ask(node: Any, client: OcpiClient, party: Party, uid: str, type_: str,
               location: LocationReferences | None, timeout: float,
               to: tuple[str, str] | None) -> Decision | None:
    """POST {tokens}/{uid}/authorize?type= to one eMSP. None means it does not
    know the token; _NoAnswer that it could not say."""
    base = party.endpoint_url(TOKENS.id, "SENDER")
    if party.status != party_repo.REGISTERED or not party.token_out:
        raise _NoAnswer("partner not registered")
    if not base:
        raise _NoAnswer("partner publishes no tokens Sender endpoint")
    url = join_url(base, uid, "authorize")
    routing = Routing(*_our_key(node), *(to or (None, None)))
    try:
        result = await asyncio.wait_for(
            client.request("POST", url, party.token_out, body=location, party_id=party.id, partner=party.name,
                           raw_token=party.allow_raw_token, routing=routing, params={"type": type_}),
            timeout)
    except TimeoutError:
        raise _NoAnswer(f"no answer within {timeout:g}s") from None
    except PartnerError as exc:
        if exc.http_status == 404:
            # "When the eMSP does not know the Token, the eMSP SHALL respond
            # with an HTTP status code: 404" (mod_tokens): the status says it,
            # even without an OCPI body. Not silence, so no offline fallback.
            if party.id not in _BARE_404_LOGGED:
                _BARE_404_LOGGED.add(party.id)
                log.info("authorize.unknown_token_without_envelope", party=party.name, detail=exc.message[:200])
            return None
        raise _NoAnswer(exc.message) from None
    status, http = result.status_code, result.http_status
    message = result.envelope.status_message or ""
    if status == StatusCode.UNKNOWN_TOKEN or (http == 404 and 2000 <= status < 3000):
        return None
    if http >= 500 or status >= 3000 or (status < 2000 and not 200 <= http < 300):
        raise _NoAnswer(f"HTTP {http}, OCPI {status} {message}".rstrip())
    if status == StatusCode.NOT_ENOUGH_INFORMATION:
        return Decision(False, REALTIME, "the eMSP needs a location to authorize this token (2002)",
                        party=party.name)
    if status >= 2000:
        raise _Refused(f"the eMSP refused the request: HTTP {http}, OCPI {status} {message}".rstrip())
    try:
        info = result.one(AuthorizationInfo)
    except UnusableReply as exc:
        raise _NoAnswer(f"unusable answer (HTTP {http}, OCPI {status}): {exc}") from None
    if ci_key(info.token.uid) == ci_key(uid) and info.token.type.value == type_:
        await _remember(node, party, info.token)
    else:
        log.warning("authorize.token_mismatch", party=party.name, asked=f"{uid}/{type_}",
                    answered=f"{info.token.uid}/{info.token.type.value}")
    allowed = info.allowed == AllowedType.ALLOWED
    return Decision(allowed, REALTIME, f"the eMSP answered {info.allowed.value}", info=info, token=info.token,
                    party=party.name)


async def _remember(node: Any, party: Party, token: Token) -> None:
    """Cache the token a real-time answer carried, under the rules a push obeys:
    only under the partner's own cc/pid (a Hub's: any, it speaks for the
    eMSPs behind it), and never over a newer copy."""
    own = {(ci_key(r["country_code"]), ci_key(r["party_id"])) for r in party.roles or ()}
    if (ci_key(token.country_code), ci_key(token.party_id)) not in own and not is_hub(party):
        return
    key = object_key(TOKENS, token, party.id)
    data = token.to_json_bytes().decode()
    async with node.engine.begin() as conn:
        stored = await repo.get(conn, key, for_update=True)
        if stored is not None and (stored.last_updated > token.last_updated
                                   or (stored.data == data and not stored.stale)):
            return
        await repo.upsert(conn, key, data, token.last_updated)
    await node.hooks.fire(Received.TOKEN, token, party)
