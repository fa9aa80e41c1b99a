"""How a Token is addressed: uid and type, the type as a URL parameter."""

from __future__ import annotations

from starlette.requests import Request

from evroam.ocpi.status import invalid
from evroam.ocpi.tokens import TokenType


def token_type(request: Request) -> str:
    """The `?type=` URL parameter; absent means RFID (mod_tokens, request parameters)."""
    raw = request.query_params.get("type")
    if raw is None:
        return TokenType.RFID.value
    try:
        return TokenType(raw).value
    except ValueError:
        raise invalid(f"type: {raw!r} is not a TokenType ({', '.join(t.value for t in TokenType)})") from None
