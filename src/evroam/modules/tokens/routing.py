"""Open Routing of Tokens through a Hub (hub/openrouting.py; the table in
docs/hub/open-routing.md): a real-time authorization, Sender POST
`{uid}/authorize[?type=]`, goes to the token's issuer: the eMSP whose Token
with that uid and type the Hub holds from its Broadcast Push. A missing
`type` means RFID (mod_tokens, "Real-time authorization")."""

from __future__ import annotations

from evroam.ocpi.tokens import TokenType
from evroam.ocpi.versions import InterfaceRole

MODULE_ID = "tokens"


async def route(req) -> tuple[str, str] | None:
    segs = req.segments
    if req.iface != InterfaceRole.SENDER or req.method != "POST" or len(segs) != 2 or segs[1] != "authorize":
        return None
    type_ = req.param("type") or TokenType.RFID.value
    issuer = await req.holder(MODULE_ID, segs[0], type_)
    if issuer is None:
        req.cannot_tell(f"the Hub holds no Token {segs[0]!r} of type {type_} from a Broadcast Push, "
                        "so its issuer is unknown")
    return issuer
