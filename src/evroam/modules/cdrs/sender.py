"""CDRs module (mod_cdrs.asciidoc): Sender (CPO) and Receiver (eMSP) routers.

Sender: GET list, only the caller's own CDRs.
Receiver: POST a new CDR (answered with a `Location` header), GET it there.
A CDR never changes: no PUT, PATCH or DELETE, and a second POST of the same
country_code/party_id/id is refused (corrections come as Credit CDRs).

Each received CDR is re-priced (evroam.pricing.check_cdr) and stored as
ACCEPTED or DISPUTED with the reason in objects.status/note.
"""

from __future__ import annotations


from fastapi import APIRouter, Request

from evroam.modules.cdrs import MODULE as CDRS
from evroam.server.objects import own_list


router = APIRouter()


# --- Sender (CPO) -----------------------------------------------------------------------


@router.get("")
async def get_cdrs(request: Request):  # noqa: ANN201
    return await own_list(request, CDRS)
