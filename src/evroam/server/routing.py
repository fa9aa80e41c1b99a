"""Routing headers of our functional answers (transport_and_format.asciidoc,
"Message Routing Headers" and "Party to Party (without Hub)").

A direct response carries TO = the requesting party and FROM = the receiving
party. In a direct connection the token names the caller and our config names
us, so both are always known and always set, whether or not the request
carried routing headers. Configuration modules (versions, credentials,
hubclientinfo) never get them: only authenticate_registered, which the
functional modules alone call, notes the routing of a request, and the
middleware adds what was noted to the answer, errors included.

When either side holds several roles, one is picked:

- the requesting party (TO): the role the request's OCPI-from names, when it
  is one of the caller's own roles; a Hub's OCPI-from is taken as sent (a Hub
  speaks for the parties behind it). Otherwise, and for a claim naming anyone
  else, the caller's first role that plays the other side of the addressed
  interface (a request to our locations Receiver comes from the caller's CPO
  role), else the caller's first role.
- the receiving party (FROM): the role the request's OCPI-to names, when it is
  one of ours; otherwise our first role (in config order) that implements the
  addressed interface (our receiver/locations answers as our eMSP role), else
  our first role.

A routing header that is no CiString(2) country code or CiString(3) party id
is answered 2001 on every functional route, before anything is read or
written; the answer still carries routing headers built from our own data.
"""

from __future__ import annotations

import re

from fastapi import Request

from evroam.ocpi.common import Role
from evroam.ocpi.headers import Routing, RoutingRequest, parse_routing
from evroam.module import REGISTRY
from evroam.ocpi.status import invalid
from evroam.ocpi.types import ci_key
from evroam.ocpi.versions import InterfaceRole
from evroam.server.context import ServerContext
from evroam.store.parties import Party

# The paths create_app mounts the module interfaces under.
_INTERFACE_PATH = re.compile(r"^/ocpi/[^/]+/(sender|receiver)/([a-z]+)(?:/|$)")
Key = tuple[str, str]


def interface_path(version: str, module: str, iface: InterfaceRole) -> str:
    return f"/ocpi/{version}/{iface.value.lower()}/{module}"


def interface_of(path: str) -> tuple[str, InterfaceRole] | None:
    """The (module, interface) a path of ours addresses, None off the functional modules."""
    m = _INTERFACE_PATH.match(path)
    if m is None or not REGISTRY.get(m.group(2)) or not REGISTRY[m.group(2)].interfaces:
        return None
    return m.group(2), InterfaceRole(m.group(1).upper())


def _other(iface: InterfaceRole | None) -> InterfaceRole | None:
    if iface is None:
        return None
    return InterfaceRole.RECEIVER if iface == InterfaceRole.SENDER else InterfaceRole.SENDER


def _plays(role: str, module: str | None, iface: InterfaceRole | None) -> bool:
    return REGISTRY.plays(role, module, iface)


def is_hub(party: Party) -> bool:
    return any(r.get("role") == Role.HUB.value for r in party.roles or ())


def honoured_from(party: Party, claimed: Key | None) -> Key | None:
    """The party an OCPI-from header names, if we believe it: one of the
    caller's own roles (as registered), or anyone when the caller is a Hub."""
    if claimed is None:
        return None
    for r in party.roles or ():
        if (ci_key(r["country_code"]), ci_key(r["party_id"])) == claimed:
            return r["country_code"], r["party_id"]
    return claimed if is_hub(party) else None


def requesting_party(party: Party, claimed: Key | None, module: str | None = None,
                     iface: InterfaceRole | None = None) -> Key | None:
    """Who asks: see the module docstring. `iface` is the interface of ours
    that was called."""
    honoured = honoured_from(party, claimed)
    if honoured is not None:
        return honoured
    roles = party.roles or []
    counterpart = _other(iface)
    for r in roles:
        if _plays(r.get("role", ""), module, counterpart):
            return r["country_code"], r["party_id"]
    return (roles[0]["country_code"], roles[0]["party_id"]) if roles else None


def receiving_party(ctx: ServerContext, addressed: Key | None, module: str | None = None,
                    iface: InterfaceRole | None = None) -> Key | None:
    """Which of our roles answers: see the module docstring."""
    for _, cc, pid in ctx.roles:
        if (ci_key(cc), ci_key(pid)) == addressed:
            return cc, pid
    for role, cc, pid in ctx.roles:
        if _plays(role, module, iface):
            return cc, pid
    return (ctx.roles[0][1], ctx.roles[0][2]) if ctx.roles else None


def header_bytes(found: Routing) -> list[tuple[bytes, bytes]]:
    """The routing headers as the middleware sends them."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in found.headers().items()]


def claimed(request: Request) -> RoutingRequest:
    """The request's routing headers as checked by note(); empty before it."""
    return getattr(request.state, "routing_request", None) or RoutingRequest()


def note(request: Request, party: Party) -> None:
    """Record the routing of an authenticated functional request (the
    middleware puts it on the answer), then refuse malformed routing headers."""
    error = None
    try:
        req = parse_routing(request.headers)
    except ValueError as exc:
        req, error = RoutingRequest(), str(exc)
    where = interface_of(request.url.path)
    if where is not None and not REGISTRY[where[0]].routed:
        return  # a configuration module (HubClientInfo) answers without routing headers
    module, iface = where if where else (None, None)
    ours = receiving_party(request.app.state.ctx, req.to_key, module, iface)
    theirs = requesting_party(party, req.from_key, module, iface)
    request.state.routing_request = req
    if ours is not None:
        request.state.routing = Routing(ours[0], ours[1], *(theirs or (None, None)))
    if error is not None:
        raise invalid(error)
