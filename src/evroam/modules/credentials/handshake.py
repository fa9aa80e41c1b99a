"""The credentials handshake in both directions (credentials.asciidoc).

Outbound (we POST, we are the credentials "Sender"): `register`, `rotate`,
`unregister`. Inbound (they POST to us): `accept_registration`,
`accept_update`, `accept_unregistration`, called by the server's router.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.client.ocpi import OcpiClient, PartnerError
from evroam.config import NodeConfig
from evroam.ocpi.base import error_text
from evroam.ocpi.credentials import Credentials, CredentialsRole
from evroam.ocpi.locations import BusinessDetails
from evroam.ocpi.status import OcpiError, StatusCode, method_not_allowed
from evroam.ocpi.versions import SUPPORTED_VERSIONS, Version, VersionDetails, highest_mutual
from evroam.store import calllog, outbox
from evroam.store import parties as repo
from evroam.store.parties import Authenticated, Party

log = structlog.get_logger(__name__)

# What we need from any partner to talk to it at all. Module endpoints are
# optional per role and checked where they are used.
REQUIRED_ENDPOINTS = ("credentials",)


def new_token() -> str:
    # 256 bits, URL-safe ASCII, well within string(64).
    return secrets.token_urlsafe(32)


class HandshakeError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(slots=True)
class Negotiated:
    version: Version
    details: VersionDetails


class Handshake:
    def __init__(self, config: NodeConfig, engine: AsyncEngine, client: OcpiClient) -> None:
        self.config = config
        self.engine = engine
        self.client = client
        # A Hub's: told (registration id, "registered" | "unregistered") once
        # committed, to push the platform's new HubClientInfo status (node.py).
        self.on_party_change: Callable[[int, str], Awaitable[object]] | None = None

    # --- what we present ------------------------------------------------------------

    def our_roles(self) -> list[CredentialsRole]:
        return [
            CredentialsRole(
                role=r.role,
                country_code=r.country_code,
                party_id=r.party_id,
                business_details=BusinessDetails(name=r.name, website=r.website),
            )
            for r in self.config.roles
        ]

    def our_credentials(self, token: str) -> Credentials:
        return Credentials(token=token, url=self.config.versions_url, roles=self.our_roles())

    # --- negotiation (shared by both directions) ------------------------------------------

    async def negotiate(self, versions_url: str, token: str, party_id: int | None, raw_token: bool = False,
                        required_version: str | None = None) -> Negotiated:
        """GET versions and the chosen version's details; classify failures as
        3001 (unusable API), 3002 (no common version) or 3003 (endpoints missing)."""
        try:
            result = await self.client.get_ok(versions_url, token, party_id=party_id, raw_token=raw_token)
            versions = [Version.from_wire(v) for v in _as_list(result.data)]
        except PartnerError as exc:
            raise HandshakeError(StatusCode.CLIENT_API_UNUSABLE, f"cannot use the versions endpoint: {exc.message}") from exc
        except (ValidationError, TypeError) as exc:
            msg = error_text(exc) if isinstance(exc, ValidationError) else str(exc)
            raise HandshakeError(StatusCode.CLIENT_API_UNUSABLE, f"versions list is invalid: {msg}") from exc
        if required_version is not None:
            chosen = next((v for v in versions if v.version.value == required_version), None)
        else:
            chosen = highest_mutual(SUPPORTED_VERSIONS, versions)
        if chosen is None:
            offered = ", ".join(v.version.value for v in versions) or "none"
            wanted = required_version or ", ".join(v.value for v in SUPPORTED_VERSIONS)
            raise HandshakeError(StatusCode.UNSUPPORTED_VERSION,
                                 f"no common version: partner offers {offered}, we need {wanted}")
        try:
            result = await self.client.get_ok(chosen.url, token, party_id=party_id, raw_token=raw_token)
            data = result.single()
            details = VersionDetails.from_wire(data if isinstance(data, dict) else {})
        except PartnerError as exc:
            raise HandshakeError(StatusCode.CLIENT_API_UNUSABLE, f"cannot use the version details: {exc.message}") from exc
        except ValidationError as exc:
            if not (isinstance(data, dict) and data.get("endpoints") == []):
                raise HandshakeError(StatusCode.CLIENT_API_UNUSABLE,
                                     f"version details are invalid: {error_text(exc)}") from exc
            raise HandshakeError(StatusCode.NO_MATCHING_ENDPOINTS, "version details list no endpoints") from exc
        if details.version != chosen.version:
            raise HandshakeError(StatusCode.UNSUPPORTED_VERSION,
                                 f"version details are for {details.version.value}, not {chosen.version.value}")
        missing = [m for m in REQUIRED_ENDPOINTS if details.endpoint(m) is None]
        if missing:
            raise HandshakeError(StatusCode.NO_MATCHING_ENDPOINTS,
                                 f"expected endpoints missing: {', '.join(missing)}")
        return Negotiated(chosen, details)

    # --- inbound ------------------------------------------------------------------------------

    async def accept_registration(self, auth: Authenticated, creds: Credentials, version: str) -> Credentials:
        party = auth.party
        neg = await self._negotiate_inbound(creds, party, version)
        token_c = new_token()
        await self._flush_calls()
        async with self.engine.begin() as conn:
            # Token A is single-use: if a concurrent POST consumed it first, this one loses.
            if await repo.drop_token(conn, auth.token_hash) != 1:
                raise method_not_allowed("already registered: use PUT to update the credentials")
            target = await self._fold_into_twin(conn, party, (creds.url,), _roles_json(creds))
            await repo.drop_tokens(conn, target.id)
            await repo.add_token(conn, target.id, token_c, repo.TOKEN_ACTIVE)
            await repo.update(conn, target.id, status=repo.REGISTERED, initiated_by_us=False,
                              token_out=creds.token, versions_url=creds.url, version=neg.version.version.value,
                              endpoints=_endpoints_json(neg.details), roles=_roles_json(creds),
                              allow_raw_token=party.allow_raw_token)
        log.info("credentials.registered", party=target.name, version=neg.version.version.value)
        await self._party_changed(target.id, "registered")
        return self.our_credentials(token_c)

    async def _fold_into_twin(self, conn, new: Party, urls: tuple[str | None, ...],
                              roles: list[dict]) -> Party:
        """A registration by a party we already hold replaces that partner's
        credentials instead of creating a second partner: the existing one
        keeps its name, its outbox, its sync state and what it sent us. The
        new registration's own row (an invite's, or our POST's placeholder)
        is dropped. Returns the partner the registration belongs to."""
        twin = await repo.registered_twin(conn, urls, roles, exclude=new.id)
        if twin is None:
            return new
        await repo.drop_tokens(conn, twin.id)
        await repo.move_tokens(conn, new.id, twin.id)
        await calllog.reassign(conn, new.id, twin.id)
        await repo.delete(conn, new.id)
        log.info("credentials.reregistered", party=twin.name, replaced=new.name)
        return twin

    async def _flush_calls(self) -> None:
        # The handshake's calls are logged under the new registration's row;
        # written out first, they move with it if it is folded into a twin.
        if self.client.call_log is not None:
            await self.client.call_log.flush()

    async def accept_update(self, auth: Authenticated, creds: Credentials, version: str) -> Credentials:
        party = auth.party
        neg = await self._negotiate_inbound(creds, party, version)
        token_c = new_token()
        async with self.engine.begin() as conn:
            # The token used for this PUT is refused from this commit on.
            if await repo.drop_token(conn, auth.token_hash) != 1:
                raise OcpiError(StatusCode.CLIENT_ERROR, "credentials token was replaced concurrently",
                                http_status=401)
            await repo.drop_tokens(conn, party.id, (repo.TOKEN_ACTIVE, repo.TOKEN_A))
            await repo.add_token(conn, party.id, token_c, repo.TOKEN_ACTIVE)
            await repo.update(conn, party.id, token_out=creds.token, versions_url=creds.url,
                              version=neg.version.version.value, endpoints=_endpoints_json(neg.details),
                              roles=_roles_json(creds))
        log.info("credentials.updated", party=party.name)
        return self.our_credentials(token_c)

    async def accept_unregistration(self, auth: Authenticated) -> None:
        await self._forget(auth.party)
        log.info("credentials.unregistered_by_partner", party=auth.party.name)

    async def _negotiate_inbound(self, creds: Credentials, party: Party, version: str) -> Negotiated:
        # The version is implied by which credentials URL was called.
        try:
            return await self.negotiate(creds.url, creds.token, party.id, raw_token=party.allow_raw_token,
                                        required_version=version)
        except HandshakeError as exc:
            raise OcpiError(exc.status_code, exc.message) from None

    # --- outbound -----------------------------------------------------------------------------

    async def invite(self, name: str, allow_raw_token: bool = False) -> tuple[str, str]:
        """Issue a token A for a new partner; returns (token A, our versions URL)."""
        token_a = new_token()
        async with self.engine.begin() as conn:
            existing = await repo.by_name(conn, name)
            if existing is not None and existing.status not in (repo.UNREGISTERED, repo.INVITED):
                raise HandshakeError(StatusCode.CLIENT_ERROR, f"partner {name!r} already exists ({existing.status})")
            if existing is None:
                party_id = await repo.create(conn, name=name, status=repo.INVITED, initiated_by_us=False,
                                             allow_raw_token=allow_raw_token)
            else:
                party_id = existing.id
                await repo.drop_tokens(conn, party_id)
                await repo.update(conn, party_id, status=repo.INVITED, token_out=None,
                                  allow_raw_token=allow_raw_token)
            await repo.add_token(conn, party_id, token_a, repo.TOKEN_A)
        return token_a, self.config.versions_url

    async def register(self, versions_url: str, token_a: str, name: str | None = None,
                       raw_token: bool = False) -> Party:
        """Run A → B → C against a partner that invited us."""
        neg = await self.negotiate(versions_url, token_a, None, raw_token=raw_token)
        creds_url = neg.details.endpoint("credentials").url
        token_b = new_token()
        # Committed before the POST: the partner calls us back with token B
        # while our POST is still open, possibly into another process.
        async with self.engine.begin() as conn:
            party_id = await repo.create(conn, name=f"registering-{secrets.token_hex(6)}",
                                         status=repo.REGISTERING, initiated_by_us=True,
                                         allow_raw_token=raw_token, versions_url=versions_url)
            await repo.add_token(conn, party_id, token_b, repo.TOKEN_PENDING)
        try:
            result = await self.client.request("POST", creds_url, token_a, body=self.our_credentials(token_b),
                                               party_id=party_id, raw_token=raw_token)
            theirs = _credentials_from(result, "POST")
        except BaseException as exc:
            async with self.engine.begin() as conn:
                await repo.drop_tokens(conn, party_id)
                await repo.delete(conn, party_id)
            if isinstance(exc, PartnerError):
                raise HandshakeError(exc.partner_status or exc.status_code, exc.message) from None
            raise
        await self._flush_calls()
        async with self.engine.begin() as conn:
            placeholder = await repo.get(conn, party_id)
            target = await self._fold_into_twin(conn, placeholder, (versions_url, theirs.url), _roles_json(theirs))
            final_name = target.name if target.id != party_id else await _unique_name(conn, name or _name_for(theirs))
            await repo.promote_pending(conn, target.id)
            await repo.update(conn, target.id, name=final_name, status=repo.REGISTERED, initiated_by_us=True,
                              token_out=theirs.token, version=neg.version.version.value,
                              endpoints=_endpoints_json(neg.details), roles=_roles_json(theirs),
                              versions_url=theirs.url, allow_raw_token=raw_token)
            party = await repo.get(conn, target.id)
        log.info("credentials.registered_with", party=final_name, version=neg.version.version.value)
        await self._party_changed(target.id, "registered")
        return party

    async def rotate(self, name: str) -> Party:
        """PUT new credentials: both tokens are replaced, the old ones refused at once."""
        party = await self._registered(name)
        neg = await self.negotiate(party.versions_url, party.token_out, party.id, raw_token=party.allow_raw_token)
        creds_url = neg.details.endpoint("credentials").url
        token_b = new_token()
        async with self.engine.begin() as conn:
            await repo.drop_tokens(conn, party.id, (repo.TOKEN_PENDING,))
            await repo.add_token(conn, party.id, token_b, repo.TOKEN_PENDING)
        try:
            result = await self.client.request("PUT", creds_url, party.token_out,
                                               body=self.our_credentials(token_b), party_id=party.id, partner=party.name,
                                               raw_token=party.allow_raw_token)
            theirs = _credentials_from(result, "PUT")
        except BaseException as exc:
            async with self.engine.begin() as conn:
                await repo.drop_tokens(conn, party.id, (repo.TOKEN_PENDING,))
            if isinstance(exc, PartnerError):
                raise HandshakeError(exc.partner_status or exc.status_code, exc.message) from None
            raise
        async with self.engine.begin() as conn:
            await repo.promote_pending(conn, party.id)
            await repo.update(conn, party.id, token_out=theirs.token, version=neg.version.version.value,
                              endpoints=_endpoints_json(neg.details), roles=_roles_json(theirs),
                              versions_url=theirs.url)
            return await repo.get(conn, party.id)

    async def unregister(self, name: str) -> str | None:
        """DELETE our credentials at the partner, then forget its tokens.

        Returns a warning when the partner could not be told; we unregister
        locally regardless, since the operator asked to cut it off.
        """
        async with self.engine.connect() as conn:
            party = await repo.by_name(conn, name)
        if party is None:
            raise HandshakeError(StatusCode.CLIENT_ERROR, f"no partner named {name!r}")
        warning = None
        creds_url = party.endpoint_url("credentials")
        if party.status == repo.REGISTERED and creds_url and party.token_out:
            try:
                result = await self.client.request("DELETE", creds_url, party.token_out, party_id=party.id, partner=party.name,
                                                   raw_token=party.allow_raw_token)
                if not result.ok():
                    warning = (f"partner answered HTTP {result.http_status}, OCPI {result.status_code}: "
                               f"{result.envelope.status_message or ''}")
            except PartnerError as exc:
                warning = f"partner not told: {exc.message}"
        await self._forget(party)
        return warning

    async def _forget(self, party: Party) -> None:
        async with self.engine.begin() as conn:
            await repo.drop_tokens(conn, party.id)
            await repo.update(conn, party.id, status=repo.UNREGISTERED, token_out=None)
            # Nothing will take them any more: left pending they would show as a growing lag.
            dropped = await outbox.drop_party(conn, party.id)
        if dropped:
            log.info("credentials.deliveries_dropped", party=party.name, deliveries=dropped)
        await self._party_changed(party.id, "unregistered")

    async def _party_changed(self, registration_id: int, event: str) -> None:
        if self.on_party_change is None:
            return
        try:
            await self.on_party_change(registration_id, event)
        except Exception:  # the registration stands: the others learn at the next status change or GET
            log.exception("credentials.party_change_failed", registration=registration_id, change=event)

    async def _registered(self, name: str) -> Party:
        async with self.engine.connect() as conn:
            party = await repo.by_name(conn, name)
        if party is None:
            raise HandshakeError(StatusCode.CLIENT_ERROR, f"no partner named {name!r}")
        if party.status != repo.REGISTERED or not party.token_out or not party.versions_url:
            raise HandshakeError(StatusCode.CLIENT_ERROR, f"partner {name!r} is not registered ({party.status})")
        return party


def _as_list(data: object) -> list:
    if isinstance(data, list):
        return data
    raise TypeError(f"expected a list of versions, got {type(data).__name__}")


def _credentials_from(result, verb: str) -> Credentials:
    if not result.ok():
        raise PartnerError(
            f"credentials {verb} answered HTTP {result.http_status}, OCPI {result.status_code}: "
            f"{result.envelope.status_message or ''}".rstrip(": "),
            status_code=result.status_code, http_status=result.http_status, partner_status=result.status_code,
        )
    try:
        data = result.single()
        return Credentials.from_wire(data if isinstance(data, dict) else {})
    except ValidationError as exc:
        raise PartnerError(f"credentials {verb} returned invalid credentials: {error_text(exc)}") from None


def _endpoints_json(details: VersionDetails) -> list[dict]:
    return [ep.to_wire() for ep in details.endpoints]


def _roles_json(creds: Credentials) -> list[dict]:
    return [r.to_wire() for r in creds.roles]


def _name_for(creds: Credentials) -> str:
    first = creds.roles[0]
    return re.sub(r"[^A-Za-z0-9-]+", "-", f"{first.country_code}-{first.party_id}").strip("-").lower()


async def _unique_name(conn, base: str) -> str:
    name, n = base, 1
    while (existing := await repo.by_name(conn, name)) is not None and existing.status != repo.REGISTERING:
        n += 1
        name = f"{base}-{n}"
    return name
