"""The independent partner: extrawest-ocpi (py_ocpi) as a CPO or an eMSP.

Run by the interop virtual environment's python, never imported by evroam's
tests:

    python app.py --role CPO --country DE --party XWC

It binds a free loopback port, prints one JSON line
`{"port": P, "token_a": T, "versions_url": U}` and serves until killed.

The OCPI side is the library's own `get_application` with our `Store` and
`Auth`. The library has only the receiving half of the credentials module
and no way to send commands, so `/control/...` (ours, not OCPI) adds the
initiating side on the library's schemas, lets the test seed and read the
partner's storage, and triggers the library's own push (`push_object`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import uuid


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["CPO", "EMSP"], required=True)
    parser.add_argument("--country", required=True)
    parser.add_argument("--party", required=True)
    args = parser.parse_args()
    sock = _bind()
    port = sock.getsockname()[1]
    # The library reads its settings from the environment once, at import.
    os.environ.update(OCPI_HOST=f"127.0.0.1:{port}", PROTOCOL="http", COUNTRY_CODE=args.country,
                      PARTY_ID=args.party, ENVIRONMENT="production", COMMAND_AWAIT_TIME="5")
    app, token_a, versions_url = build(args.role, args.country, args.party, port)
    import uvicorn

    print(json.dumps({"port": port, "token_a": token_a, "versions_url": versions_url}), flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def build(role: str, country: str, party: str, port: int):
    import httpx
    from fastapi import APIRouter, Body, HTTPException
    from fastapi.encoders import jsonable_encoder

    from py_ocpi import get_application
    from py_ocpi.core.adapter import BaseAdapter
    from py_ocpi.core.endpoints import ENDPOINTS
    from py_ocpi.core.endpoints.v_2_2_1.utils import cpo_generator
    from py_ocpi.core.enums import ModuleID, RoleEnum
    from py_ocpi.core.push import push_object
    from py_ocpi.core.schemas import Push, Receiver
    from py_ocpi.modules.commands.v_2_2_1 import schemas as commands
    from py_ocpi.modules.credentials.v_2_2_1.schemas import Credentials
    from py_ocpi.modules.versions.enums import VersionNumber
    from py_ocpi.modules.versions.v_2_2_1.schemas import InterfaceRole
    from store import STATE, Auth, Store, key_of

    v = VersionNumber.v_2_2_1
    base = f"http://127.0.0.1:{port}"
    STATE.versions_url = f"{base}/ocpi/versions"
    STATE.roles = [{"role": role, "country_code": country, "party_id": party,
                    "business_details": {"name": f"extrawest-ocpi {role}"}}]
    roles = STATE.roles

    def reset_state() -> str:
        STATE.__init__()
        STATE.versions_url, STATE.roles = f"{base}/ocpi/versions", roles
        token = STATE.new_token()
        STATE.token_a.add(token)
        return token

    token_a = reset_state()
    role_enum = RoleEnum.cpo if role == "CPO" else RoleEnum.emsp
    if role == "CPO":
        # Quirk: the CPO's commands receiver is mounted but not listed in
        # its version details; without it no eMSP could send it a command.
        ENDPOINTS[v][RoleEnum.cpo][ModuleID.commands] = cpo_generator.generate_endpoint(
            ModuleID.commands, InterfaceRole.receiver)
    modules = [ModuleID.credentials_and_registration, ModuleID.locations, ModuleID.tariffs,
               ModuleID.sessions, ModuleID.cdrs, ModuleID.tokens, ModuleID.commands]
    app = get_application(version_numbers=[v], roles=[role_enum], crud=Store, modules=modules,
                          authenticator=Auth)
    control = APIRouter(prefix="/control")
    schema_of = {
        "locations": BaseAdapter.location_adapter, "tariffs": BaseAdapter.tariff_adapter,
        "sessions": BaseAdapter.session_adapter, "cdrs": BaseAdapter.cdr_adapter,
        "tokens": BaseAdapter.token_adapter,
    }

    def auth(token: str) -> dict:
        return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}

    def only_peer() -> tuple[str, dict]:
        live = [(t, p) for t, p in STATE.peers.items() if p.get("token")]
        if len(live) != 1:
            raise HTTPException(409, f"{len(live)} registered peers")
        return live[0]

    def endpoint(peer: dict, module: str, interface: str) -> str:
        for e in peer["endpoints"]:
            # The credentials endpoint's role means nothing; both sides list it differently.
            if e["identifier"] == module and (module == "credentials" or e.get("role") == interface):
                return e["url"]
        raise HTTPException(409, f"peer has no {module} {interface}")

    async def details_of(client: httpx.AsyncClient, versions_url: str, token: str) -> tuple[str, dict]:
        versions = (await client.get(versions_url, headers=auth(token))).json()["data"]
        url = next(x["url"] for x in versions if x["version"] == v.value)
        return url, (await client.get(url, headers=auth(token))).json()["data"]

    @control.get("/state")
    async def state() -> dict:
        return jsonable_encoder({
            "token_a": sorted(STATE.token_a), "peers": STATE.peers, "objects": STATE.objects,
            "commands_received": STATE.commands_received, "command_results": STATE.command_results,
            "authorize_calls": STATE.authorize_calls})

    @control.post("/reset")
    async def reset() -> dict:
        return {"token_a": reset_state()}

    @control.post("/objects/{module}")
    async def seed(module: str, objects: list[dict] = Body(...)) -> dict:
        for raw in objects:
            data = schema_of[module](raw).dict()
            STATE.objects[module][key_of(module, data)] = data
        return {"count": len(STATE.objects[module])}

    @control.delete("/objects/{module}/{key}")
    async def forget(module: str, key: str) -> dict:
        STATE.objects[module].pop(key, None)
        return {"count": len(STATE.objects[module])}

    @control.post("/push/{module}/{object_id}")
    async def push(module: str, object_id: str) -> dict:
        token, peer = only_peer()
        async with httpx.AsyncClient() as client:
            details_url, _ = await details_of(client, peer["versions_url"], peer["token"])
        push = Push(module_id=ModuleID(module), object_id=object_id,
                    receivers=[Receiver(endpoints_url=details_url, auth_token=peer["token"])])
        result = await push_object(v, push, Store, BaseAdapter, token)
        return jsonable_encoder(result.dict())

    @control.post("/register")
    async def register(versions_url: str = Body(...), token: str = Body(...)) -> dict:
        async with httpx.AsyncClient() as client:
            _, details = await details_of(client, versions_url, token)
            creds_url = endpoint({"endpoints": details["endpoints"]}, "credentials", "SENDER")
            ours = STATE.new_token()
            STATE.peers[ours] = {"endpoints": details["endpoints"]}  # accepted during the callback
            body = Credentials(**STATE.our_credentials(ours)).dict()
            r = await client.post(creds_url, json=jsonable_encoder(body), headers=auth(token))
            reply = r.json()
            if r.status_code != 200 or reply.get("status_code") != 1000:
                STATE.peers.pop(ours, None)
                return {"http_status": r.status_code, "body": reply}
            theirs = reply["data"]
            STATE.peers[ours] = {"token": theirs["token"], "versions_url": theirs["url"], "roles": theirs["roles"],
                                 "endpoints": details["endpoints"], "credentials_url": creds_url}
        return {"http_status": r.status_code, "body": reply, "token": ours}

    @control.post("/rotate")
    async def rotate() -> dict:
        old, peer = only_peer()
        new = STATE.new_token()
        STATE.peers[new] = dict(peer)
        async with httpx.AsyncClient() as client:
            url = peer.get("credentials_url") or endpoint(peer, "credentials", "SENDER")
            body = Credentials(**STATE.our_credentials(new)).dict()
            r = await client.put(url, json=jsonable_encoder(body), headers=auth(peer["token"]))
        reply = r.json()
        if r.status_code == 200 and reply.get("status_code") == 1000:
            STATE.peers[new]["token"] = reply["data"]["token"]
            STATE.peers.pop(old)
        else:
            STATE.peers.pop(new)
        return {"http_status": r.status_code, "body": reply}

    @control.post("/unregister")
    async def unregister() -> dict:
        token, peer = only_peer()
        async with httpx.AsyncClient() as client:
            url = peer.get("credentials_url") or endpoint(peer, "credentials", "SENDER")
            r = await client.delete(url, headers=auth(peer["token"]))
        STATE.peers.pop(token)
        return {"http_status": r.status_code, "body": r.json()}

    @control.post("/command/{command_type}")
    async def command(command_type: str, data: dict = Body(...)) -> dict:
        _, peer = only_peer()
        uid = uuid.uuid4().hex
        data = {**data, "response_url": f"{base}/ocpi/emsp/{v.value}/commands/{uid}"}
        model = {"START_SESSION": commands.StartSession, "STOP_SESSION": commands.StopSession,
                 "RESERVE_NOW": commands.ReserveNow, "CANCEL_RESERVATION": commands.CancelReservation,
                 "UNLOCK_CONNECTOR": commands.UnlockConnector}[command_type]
        body = jsonable_encoder(model(**data).dict())
        url = endpoint(peer, "commands", "RECEIVER").rstrip("/") + "/" + command_type
        async with httpx.AsyncClient() as client:
            r = await client.post(url, json=body, headers=auth(peer["token"]))
        return {"uid": uid, "sent": body, "http_status": r.status_code, "body": r.json()}

    @control.post("/behaviour")
    async def behaviour(command_response: dict | None = Body(None), command_result: dict | None = Body(None)) -> dict:
        if command_response is not None:
            STATE.command_response = command_response
        if command_result is not None:
            STATE.command_result = command_result
        return {}

    app.include_router(control)
    return app, token_a, STATE.versions_url


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
