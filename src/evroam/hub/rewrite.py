"""URLs the receiving party calls back, rewritten to come back through the Hub.

A command's `response_url` (and a ChargingProfiles request's) names the
requester's own server, but the receiver holds only the Hub's token: it
could not call it. So the Hub rewrites such a URL to

    {public_url}/ocpi/{version}/hub/callback/{cc}/{pid}/{base64url(original)}

with cc/pid = the requester (the request's OCPI-from). Everything the Hub
needs to forward the call back is in the URL: any process of the Hub, after
any restart, can serve it, and nothing is stored. Which fields are callback
URLs is the module's to say (`Module.callback_fields`), as a body field or a
query parameter; only those modules' bodies are parsed on the forward path.

The callback is never an open proxy: the original URL must be on the
requester platform's own server (scheme, host and port of its versions URL
or of one of its endpoints).
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qsl, urlencode, urlsplit

from evroam.hub.layer import HubRefusal, Routed
from evroam.ocpi.status import StatusCode
from evroam.store.parties import Party

# The spec's URL type is string(255): a longer rewritten URL is refused by
# the receiver, so the Hub says so first.
MAX_URL = 255


def callback_url(public_url: str, version: str, requester: tuple[str, str], original: str) -> str:
    token = base64.urlsafe_b64encode(original.encode()).rstrip(b"=").decode("ascii")
    return f"{public_url.rstrip('/')}/ocpi/{version}/hub/callback/{requester[0]}/{requester[1]}/{token}"


def original_of(token: str) -> str:
    """The URL a callback path carries (2001 when it carries none)."""
    try:
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        url = ""
    if urlsplit(url).scheme not in ("http", "https"):
        raise HubRefusal(StatusCode.INVALID_PARAMETERS, "this callback URL of the Hub names no URL to call back", 400)
    return url


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def check_origin(url: str, requester: Party) -> None:
    """2001 unless `url` is on the requester platform's own server."""
    theirs = {_origin(requester.versions_url)} | {_origin(e.get("url")) for e in requester.endpoints or ()}
    if _origin(url) not in theirs - {None}:
        raise HubRefusal(StatusCode.INVALID_PARAMETERS, "the callback URL is not on the requesting platform's "
                         "server: the Hub calls back only there", 400)


def _rewritten(r: Routed, public_url: str, value: object) -> object:
    if not isinstance(value, str) or not value:
        return value
    url = callback_url(public_url, r.version, r.sender, value)
    if len(url) > MAX_URL:
        raise HubRefusal(StatusCode.HUB_ERROR, f"the Hub cannot route this request: its callback URL would be "
                         f"{len(url)} characters, over the {MAX_URL} a URL may have; use a shorter one")
    return url


def request_body(r: Routed, public_url: str, body: bytes) -> bytes:
    """The body with its callback fields rewritten; as it was when it has
    none (or is no JSON object: the receiver says what is wrong with it)."""
    fields = r.module.callback_fields
    if not body or not any(f.encode() in body for f in fields):
        return body
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if not isinstance(doc, dict) or not any(f in doc for f in fields):
        return body
    for f in fields:
        if f in doc:
            doc[f] = _rewritten(r, public_url, doc[f])
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def request_query(r: Routed, public_url: str, query: str) -> str:
    """The query string with its callback parameters rewritten."""
    fields = r.module.callback_fields
    if not query or not any(f in query for f in fields):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, _rewritten(r, public_url, v) if k in fields else v) for k, v in pairs])
