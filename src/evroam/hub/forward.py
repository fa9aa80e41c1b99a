"""Direct routing: a request with TO = another party, forwarded to that
party's own endpoint for the same module and interface, with that party's
token (transport_and_format, "Party to Party via Hub").

- TO and FROM go on as the caller set them; the answer swaps them.
- A new X-Request-ID, the same X-Correlation-ID.
- Body and status passed through untouched (last_updated included); URLs in
  answer headers that point at the receiving party (`Link`, `Location`) are
  rewritten to the Hub's endpoint, since the caller holds only the Hub's token.
- URLs the receiver calls back (Module.callback_fields) are rewritten to the
  Hub's callback path, and a call to it goes on to the original (hub/rewrite.py).
- The Hub keeps nothing of the object: the call log has both legs.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import structlog

from evroam.hub import rewrite
from evroam.hub.directory import Key
from evroam.hub.layer import Answer, Hub, HubRefusal, Routed, target_of
from evroam.ocpi import headers as H
from evroam.ocpi.headers import Routing
from evroam.ocpi.status import StatusCode
from evroam.store.calllog import CallRecord, redact
from evroam.store.parties import Party

log = structlog.get_logger(__name__)

# Headers of the receiver's answer that go back to the caller (besides the
# routing headers, which the Hub sets, and the ids, which the middleware sets).
PASSED_BACK = (b"content-type", b"x-total-count", b"x-limit")
REWRITTEN = (b"link", b"location")


async def forward(hub: Hub, r: Routed) -> Answer:
    directory = await hub.directory.get()
    target = target_of(directory.find(*r.to), r.to)
    return await send_to(hub, r, target, r.to)


async def send_to(hub: Hub, r: Routed, target, to_key) -> Answer:
    """Forward `r` to `target` (a HubParty) with TO = `to_key`."""
    base = target.endpoint_url(r.module.id, r.iface.value)
    if not base:
        raise HubRefusal(StatusCode.HUB_UNKNOWN_RECEIVER,
                         f"receiver {to_key[0]}/{to_key[1]} does not implement the {r.module.id} "
                         f"{r.iface.value.lower()} interface")
    body, query = r.body, r.query
    if r.module.callback_fields:
        body = rewrite.request_body(r, hub.public_url, body)
        query = rewrite.request_query(r, hub.public_url, query)
    url = base.rstrip("/") + r.rest + ("?" + query if query else "")
    status, raw, resp_headers = await relay(hub, r, target.registration, url, body, r.sender, to_key)
    await after_forward(hub, r, to_key, status)
    out = [(k.lower(), v) for k, v in resp_headers if k.lower() in PASSED_BACK]
    for k, v in resp_headers:
        if k.lower() in REWRITTEN:
            out.append((k.lower(), rewrite_url(v.decode("latin-1"), base,
                                               hub.endpoint_url(r.version, r.module.id, r.iface)).encode("latin-1")))
    out += hub.routing_answer(r.sender, to_key)
    return Answer(status, raw, out)


async def callback(hub: Hub, r: Routed) -> Answer:
    """A receiver calls back a URL the Hub rewrote (hub/rewrite.py): the
    call goes on to the original URL, at the requester its path names, with
    FROM = the caller's role and TO = the requester."""
    original = rewrite.original_of(r.rest)
    directory = await hub.directory.get()
    target = target_of(directory.find(*r.to), r.to)
    rewrite.check_origin(original, target.registration)
    status, raw, resp_headers = await relay(hub, r, target.registration, original, r.body, r.sender, target.key)
    out = [(k.lower(), v) for k, v in resp_headers if k.lower() in PASSED_BACK]
    return Answer(status, raw, out + hub.routing_answer(r.sender, target.key))


async def relay(hub: Hub, r: Routed, reg: Party, url: str, body: bytes, frm: Key,
                to: Key) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """One call to a party with the token the Hub holds for it: the
    receiver's status, body and headers, or the hub error that says why not."""
    request_id = H.new_id()
    hdrs = {
        "Authorization": H.raw_token_header(reg.token_out) if reg.allow_raw_token else H.encode_token(reg.token_out),
        "X-Request-ID": request_id,
        "X-Correlation-ID": r.correlation_id or H.new_id(),
        **Routing(frm[0], frm[1], to[0], to[1]).headers(),
    }
    if body:
        hdrs["Content-Type"] = r.headers.get("content-type", "application/json")
    rec = CallRecord(direction="out", method=r.method, url=url, duration_ms=0.0, party_id=reg.id,
                     request_id=request_id, correlation_id=hdrs["X-Correlation-ID"])
    who = f"{to[0]}/{to[1]}"
    started = time.perf_counter()
    try:
        async with hub.session().request(r.method, url, data=body or None, headers=hdrs, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=hub.forward_timeout_s)) as resp:
            raw = await resp.read()
            rec.http_status = resp.status
            if hub.call_log is not None:
                rec.response_body = redact(raw, hub.call_log.body_cap)
            return resp.status, raw, resp.raw_headers
    except asyncio.TimeoutError:
        rec.error = f"timed out after {hub.forward_timeout_s} s"
        raise HubRefusal(StatusCode.HUB_TIMEOUT, f"{who} did not answer within "
                         f"{hub.forward_timeout_s:g} s (hub_forward_timeout_s)") from None
    except (aiohttp.ClientConnectorError, OSError) as exc:
        # Nobody listening, or no route to it: the party is not connected.
        rec.error = f"{type(exc).__name__}: {exc}"
        raise HubRefusal(StatusCode.HUB_CONNECTION_PROBLEM, f"could not reach {who}: {type(exc).__name__}") from None
    except (aiohttp.ClientError, ValueError) as exc:
        # Reached, but no usable answer (cut off, not HTTP).
        rec.error = f"{type(exc).__name__}: {exc}"
        raise HubRefusal(StatusCode.HUB_ERROR, f"no usable answer from {who}: {type(exc).__name__}") from None
    finally:
        rec.duration_ms = (time.perf_counter() - started) * 1000
        if hub.call_log is not None:
            rec.request_body = redact(body, hub.call_log.body_cap) if body else None
            hub.call_log.record(rec)


async def after_forward(hub: Hub, r: Routed, to_key, status: int) -> None:
    for hook in hub.after_forward:
        try:
            await hook(hub, r, to_key, status)
        except Exception:  # the forward is done and answered: a hook cannot undo it
            log.exception("hub.after_forward_failed", hook=repr(hook), module=r.module.id)


def rewrite_url(value: str, theirs: str, ours: str) -> str:
    """`value` (a URL or a Link header holding one) with the receiving
    party's endpoint replaced by the Hub's, so the caller's next call comes
    back through the Hub. Anything not under their endpoint is left alone."""
    theirs = theirs.rstrip("/")
    return value.replace(theirs, ours.rstrip("/")) if theirs in value else value
