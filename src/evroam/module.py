"""What a module package tells the generic layers about itself.

Each OCPI module is one package under `evroam/modules/` whose `__init__.py`
builds one `Module`; `evroam/modules/__init__.py` registers them all in
`REGISTRY`, once. The generic layers (server, store, sync, parties) never
name a module: they look its description up here by the id they were handed
(a URL, an outbox row, a command line). So this file imports only `ocpi`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import Role
from evroam.ocpi.types import ci_key
from evroam.ocpi.versions import InterfaceRole

Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OwnerRules:
    """What a module checks, beyond the generic rules (sync/own.py), before
    one of our own objects of it is stored."""

    # Why the object may not be stored as given, naming the field, or None.
    # Gets the object and the node's NodeConfig (None: the defaults).
    refusal: Callable[[OcpiModel, Any], str | None] | None = None
    # `lock(*key)` -> asyncio.Lock: changes of one object are serialised in
    # this process, for documents changed by read-modify-write (Locations:
    # their EVSEs and Connectors). None: no lock.
    lock: Callable[..., Any] | None = None
    # The object's country_code/party_id name the party it describes, not its
    # owner (HubClientInfo): any pair, as long as we play the owner role.
    describes_others: bool = False


@dataclass(slots=True, eq=False)
class Module:
    id: str  # the module id of the spec (ModuleID)
    # Which interface each role implements ("Interfaces" in mod_*.asciidoc).
    interfaces: Mapping[Role, InterfaceRole] = field(default_factory=dict)
    sender: Any = None  # the APIRouter of the Sender interface we serve, if any
    receiver: Any = None  # the APIRouter of the Receiver interface we serve, if any
    # --- object modules: what is stored, and how it is keyed ---
    model: type[OcpiModel] | None = None
    owner: Role | None = None  # the role that owns the data (implements the Sender interface)
    id_field: str = "id"
    typed: bool = False  # identity is id + type (Tokens)
    patchable: bool = False  # the Receiver has PATCH
    deletable: bool = False  # the Receiver has DELETE
    immutable: bool = False  # POSTed once, never changed (CDRs)
    # Whether a Receiver's object URL ends in the id: {cc}/{pid}/{id}. HubClientInfo's
    # is {cc}/{pid}, the party it describes.
    id_in_url: bool = True
    # The Sender's GET /{id} answers the stored document as it is, so the fast
    # path (server/fastpath.py) may serve it before FastAPI's routing.
    fast_get_one: bool = False
    # PATCH fields whose values are appended to the stored list instead of replacing it.
    appended: tuple[str, ...] = ()
    # How a Receiver PATCH merges into the stored document (None: fields replace).
    merge: Merge | None = None
    # The partner an object concerns, as ci_key(cc + pid), when only it may see it.
    ref_of: Callable[[OcpiModel], str | None] | None = None
    # How an object a partner sends us (pushed or pulled) is judged before it is
    # stored: `await judge(conn, owner_id, obj) -> (status, note)` (CDRs: re-priced).
    judge: Callable[..., Awaitable[tuple[str, str | None]]] | None = None
    # Query parameters a first (full) pull sends, where the Sender requires some.
    pull_params: Mapping[str, str] = field(default_factory=dict)
    # Who may read and write under a country_code/party_id at our Receiver:
    # `check(party, cc, pid)` raises; None is the rule of every module but
    # HubClientInfo: only under the caller's own roles.
    may_write: Callable[[Any, str, str], None] | None = None
    # Owner-side rules for our own objects of this module (set by its package).
    owner_rules: OwnerRules = field(default_factory=OwnerRules)
    # Asynchronous modules (results follow at a response_url): how they answer (sync/tracker.Answers).
    answers: Any = None
    # --- through a Hub (hub/, docs/hub.md) ---
    # A functional module a Hub routes; False for a configuration module
    # (HubClientInfo: the Hub answers it itself, without routing headers).
    routed: bool = True
    # Data meant for every party, so a push with TO = the Hub is a Broadcast
    # Push (transport_and_format: Locations and Tokens, not Sessions or CDRs).
    broadcast: bool = False
    # The one party a push of one of our objects is for, as (cc, pid) from the
    # stored document, where it is not for every party (Sessions, CDRs: the
    # token's eMSP): a party behind a Hub sends it with that TO (sync/via_hub.py).
    addressee: Callable[[Mapping[str, Any]], tuple[str, str] | None] | None = None
    # Open Routing (no TO): `await route(request) -> (cc, pid) | None`, the
    # party a request goes to by its content (`request`: hub/openrouting.
    # OpenRequest); None: cannot tell. None here: no rule for this module.
    route: Callable[..., Awaitable[tuple[str, str] | None]] | None = None
    # Routes a Hub learns while forwarding, for later Open Routing Requests
    # that name only an id: `learn(routed) -> id | None`, the object id whose
    # route (the request's FROM and TO) a forwarded request tells (Sessions:
    # a Receiver PUT's session_id). Called after a 2xx answer only.
    learn: Callable[[Any], str | None] | None = None
    # Request fields holding a URL the receiver calls back (a command's
    # response_url): a Hub rewrites them to come back through it (hub/rewrite.py).
    callback_fields: tuple[str, ...] = ()
    # How one Receiver message merges into the stored document, for a Hub
    # that stores what it broadcasts (hub/broadcast.py), where the generic
    # PUT and PATCH merges (server/writes.py) will not do: a Location's EVSE
    # and Connector paths. `message_merger(method, body, parts, key, config)`
    # -> server.writes.Merger; `parts` the URL below the object id, `body`
    # parsed JSON, judged as the module's Receiver judges it (raises OcpiError).
    message_merger: Callable[..., Any] | None = None

    @property
    def stores_objects(self) -> bool:
        return self.model is not None

    def url_parts(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        """The segments after a Receiver endpoint that address this object (a stored document)."""
        parts = (doc["country_code"], doc["party_id"])
        return (*parts, doc[self.id_field]) if self.id_in_url else parts

    def url_params(self, doc: Mapping[str, Any]) -> dict[str, str] | None:
        """Query parameters that complete the address (Tokens: ?type=)."""
        return {"type": doc["type"]} if self.typed else None

    def ref(self, obj: OcpiModel) -> str | None:
        return self.ref_of(obj) if self.ref_of is not None else None


def ref_by_token(obj: OcpiModel) -> str | None:
    """Sessions and CDRs concern the eMSP of their token only."""
    token = getattr(obj, "cdr_token", None)
    return ci_key(token.country_code + token.party_id) if token is not None else None


def addressee_by_token(doc: Mapping[str, Any]) -> tuple[str, str] | None:
    """A Session or CDR goes to the eMSP that "owns" its token (CdrToken)."""
    token = doc.get("cdr_token") or {}
    cc, pid = token.get("country_code"), token.get("party_id")
    return (cc, pid) if cc and pid else None


class Modules(Mapping[str, Module]):
    """The registered modules, in registration order (the order version
    details list them and pulls run)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Module] = {}

    def add(self, package: ModuleType) -> Module:
        """Register a module package: its `MODULE` description, with the
        `router` of its sender.py and receiver.py (None where it serves none)."""
        m: Module = package.MODULE
        if m.id in self._by_id:
            raise ValueError(f"module {m.id!r} registered twice")
        m.sender = getattr(getattr(package, "sender", None), "router", None)
        m.receiver = getattr(getattr(package, "receiver", None), "router", None)
        self._by_id[m.id] = m
        return m

    def __getitem__(self, module_id: str) -> Module:
        try:
            return self._by_id[module_id]
        except KeyError:
            if not self._by_id:
                raise KeyError(f"{module_id!r}: no module is registered (import evroam.modules)") from None
            raise

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def objects(self) -> dict[str, Module]:
        """The modules that store objects (Locations, Tariffs, …)."""
        return {k: m for k, m in self._by_id.items() if m.stores_objects}

    def interfaces_of(self, role: Role | str) -> dict[str, InterfaceRole]:
        """module id -> the interface `role` implements."""
        role = Role(role)
        return {k: m.interfaces[role] for k, m in self._by_id.items() if role in m.interfaces}

    def plays(self, role: Role | str, module_id: str | None, iface: InterfaceRole | None) -> bool:
        m = self._by_id.get(module_id or "")
        try:
            return m is not None and m.interfaces.get(Role(role)) == iface
        except ValueError:
            return False


REGISTRY = Modules()
