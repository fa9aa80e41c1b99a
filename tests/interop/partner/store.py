"""In-memory storage and authenticator for the independent partner.

Runs in the interop virtual environment (py_ocpi, pydantic 1), never in
evroam's: our pytest does not collect or import this folder.

The library hands every read and write to a `Crud` class and every token
check to an `Authenticator` class; these are ours, written on its public API
(py_ocpi.core.crud.Crud, py_ocpi.core.authentication.authenticator).
One process plays one role, so a module's objects are either the partner's
own (as Sender) or what evroam sent it (as Receiver), never both.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from py_ocpi.core.authentication.authenticator import Authenticator
from py_ocpi.core.crud import Crud
from py_ocpi.core.enums import Action, ModuleID

PAGE_MAX = 50  # the partner's largest page, as a real server caps it


class State:
    """Everything the partner holds; the control API reads and writes it."""

    def __init__(self) -> None:
        self.versions_url = ""
        self.roles: list[dict] = []
        self.token_a: set[str] = set()
        # token evroam uses to call us -> what we know of evroam under it
        self.peers: dict[str, dict] = {}
        self.objects: dict[str, dict[str, dict]] = {m.value: {} for m in ModuleID}
        self.commands_received: list[dict] = []
        self.command_response: dict = {"result": "ACCEPTED", "timeout": 30}
        self.command_result: dict | None = {"result": "ACCEPTED"}
        self.command_results: dict[str, dict] = {}
        self.authorize_calls: list[dict] = []

    def new_token(self) -> str:
        return secrets.token_urlsafe(24)

    def our_credentials(self, token: str) -> dict:
        return {"token": token, "url": self.versions_url, "roles": self.roles}


STATE = State()


def key_of(module: str, data: dict | None = None, id: Any = None, token_type: Any = None) -> str:
    """CiString keys: the library lower-cases ids in paths and bodies alike."""
    if module == ModuleID.tokens.value:
        uid = data["uid"] if data is not None else id
        kind = data["type"] if data is not None else (token_type or "RFID")  # the library's default
        return f"{str(uid).lower()}|{getattr(kind, 'value', kind)}"
    return str(data["id"] if data is not None else id).lower()


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class Store(Crud):
    @classmethod
    async def get(cls, module: ModuleID, role: Any, id: Any, *args: Any, **kw: Any) -> Any:
        if module == ModuleID.credentials_and_registration:
            return STATE.our_credentials(id) if id in STATE.peers else None
        if module == ModuleID.commands:
            # The CPO's result poller: our "charger" has already answered.
            return STATE.command_result
        return STATE.objects[module.value].get(key_of(module.value, id=id, token_type=kw.get("token_type")))

    @classmethod
    async def list(cls, module: ModuleID, role: Any, filters: dict, *args: Any, **kw: Any) -> tuple[list, int, bool]:
        items = sorted(STATE.objects[module.value].values(), key=lambda o: (_moment(o["last_updated"]), str(o.get("id"))))
        if filters.get("date_from") is not None:
            items = [o for o in items if _moment(o["last_updated"]) >= _moment(filters["date_from"])]
        if filters.get("date_to") is not None:
            items = [o for o in items if _moment(o["last_updated"]) < _moment(filters["date_to"])]
        offset, limit = filters["offset"], min(filters["limit"], PAGE_MAX)
        page = items[offset:offset + limit]
        return page, len(items), offset + len(page) >= len(items)

    @classmethod
    async def create(cls, module: ModuleID, role: Any, data: dict, *args: Any, **kw: Any) -> Any:
        if module == ModuleID.credentials_and_registration:
            STATE.token_a.discard(kw["auth_token"])  # token A is spent
            token = STATE.new_token()
            STATE.peers[token] = _peer(data)
            return STATE.our_credentials(token)
        STATE.objects[module.value][key_of(module.value, data)] = data
        return data

    @classmethod
    async def update(cls, module: ModuleID, role: Any, data: dict, id: Any, *args: Any, **kw: Any) -> Any:
        if module == ModuleID.credentials_and_registration:
            old = kw["auth_token"]
            token = STATE.new_token()
            STATE.peers[token] = _peer(data)
            STATE.peers.pop(old, None)
            return STATE.our_credentials(token)
        if module == ModuleID.commands:
            STATE.command_results[str(id)] = data
            return data
        STATE.objects[module.value][key_of(module.value, data)] = data
        return data

    @classmethod
    async def delete(cls, module: ModuleID, role: Any, id: Any, *args: Any, **kw: Any) -> None:
        if module == ModuleID.credentials_and_registration:
            STATE.peers.pop(kw["auth_token"], None)
            return
        STATE.objects[module.value].pop(key_of(module.value, id=id), None)

    @classmethod
    async def do(cls, module: ModuleID, role: Any, action: Action, *args: Any, data: dict | None = None,
                 **kw: Any) -> Any:
        if action == Action.get_client_token:
            return STATE.peers[kw["auth_token"]]["token"]
        if action == Action.send_command:
            STATE.commands_received.append({"command": kw["command"].value, "data": args[0] if args else data})
            return STATE.command_response
        if action == Action.authorize_token:
            STATE.authorize_calls.append(data)
            token = STATE.objects[ModuleID.tokens.value].get(
                key_of(ModuleID.tokens.value, id=data["token_uid"], token_type=data["token_type"]))
            allowed = "ALLOWED" if token["valid"] else "BLOCKED"
            return {"allowed": allowed, "token": token, "location": data["location_reference"]}
        raise NotImplementedError(action)


def _peer(data: dict) -> dict:
    """What the library's credentials receiver hands us: evroam's credentials
    and the version details it fetched with them."""
    creds = data["credentials"]
    return {"token": creds["token"], "versions_url": creds["url"], "roles": creds["roles"],
            "endpoints": data["endpoints"]["endpoints"]}


class Auth(Authenticator):
    @classmethod
    async def get_valid_token_c(cls) -> list[str]:
        return list(STATE.peers)

    @classmethod
    async def get_valid_token_a(cls) -> list[str]:
        return list(STATE.token_a)
