"""Open Routing of Sessions through a Hub (hub/openrouting.py; the table in
docs/hub/open-routing.md).

- Receiver PUT/PATCH `{cc}/{pid}/{session_id}` (CPO to eMSP): the token's
  issuer, the body's `cdr_token` ("ID of the eMSP that 'owns' this Token");
  a PATCH without cdr_token: the eMSP this session's PUT went to.
- Sender PUT `{session_id}/charging_preferences` (eMSP to CPO): the CPO
  whose PUT of this session went to the caller.

The Hub learns a session's route from every Receiver PUT it forwards
(`learn`): FROM = the session's CPO, TO = its eMSP.
"""

from __future__ import annotations

from evroam.ocpi.versions import InterfaceRole

MODULE_ID = "sessions"


async def route(req) -> tuple[str, str] | None:
    segs = req.segments
    if req.iface == InterfaceRole.RECEIVER and len(segs) == 3 and req.method in ("PUT", "PATCH"):
        issuer = req.party_at("cdr_token")
        if issuer is not None:
            return issuer
        if req.method == "PATCH":
            emsp = await req.counterpart(MODULE_ID, segs[2])
            if emsp is not None:
                return emsp
            req.cannot_tell(f"the PATCH of Session {segs[2]!r} has no cdr_token, and no PUT of that "
                            "session from you went through this Hub")
        req.cannot_tell("the Session has no cdr_token (country_code, party_id of its eMSP)")
    if req.iface == InterfaceRole.SENDER and req.method == "PUT" and len(segs) == 2 \
            and segs[1] == "charging_preferences":
        return await session_cpo(req, segs[0])
    return None


async def session_cpo(req, session_id: str) -> tuple[str, str]:
    """The CPO of a session the Hub routed: the one whose PUT of it went
    to the caller, else the one CPO that PUT it at all (a caller that is
    not the session's eMSP: an SCSP)."""
    routes = await req.learnt(MODULE_ID, session_id)
    cpos = {rt.frm for rt in routes if rt.to == req.caller} or {rt.frm for rt in routes}
    if len(cpos) == 1:
        return cpos.pop()
    if cpos:
        req.cannot_tell(f"Session {session_id!r} was PUT by several CPOs "
                        f"({', '.join(sorted('/'.join(k) for k in cpos))})")
    req.cannot_tell(f"no PUT of Session {session_id!r} went through this Hub, so its CPO is unknown")


def learn(routed) -> str | None:
    """A forwarded Receiver PUT `{cc}/{pid}/{session_id}` tells the session's route."""
    segs = routed.segments
    if routed.method == "PUT" and routed.iface == InterfaceRole.RECEIVER and len(segs) == 3:
        return segs[2]
    return None
