"""Open Routing of CDRs through a Hub (hub/openrouting.py; the table in
docs/hub/open-routing.md): a CDR pushed to a Receiver goes to its token's
issuer, the body's `cdr_token` ("ID of the eMSP that 'owns' this Token")."""

from __future__ import annotations

from evroam.ocpi.versions import InterfaceRole


async def route(req) -> tuple[str, str] | None:
    if req.iface != InterfaceRole.RECEIVER or req.method not in ("POST", "PUT", "PATCH"):
        return None
    issuer = req.party_at("cdr_token")
    if issuer is None:
        req.cannot_tell("the CDR has no cdr_token (country_code, party_id of its eMSP)")
    return issuer
