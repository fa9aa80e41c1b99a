"""Who may write ClientInfo at our Receiver: a caller registered with a HUB role."""

from __future__ import annotations

from evroam.ocpi.common import Role
from evroam.ocpi.status import not_found
from evroam.store.parties import Party


def require_hub(party: Party, cc: str, pid: str) -> None:
    """Any country_code/party_id, but only from a Hub: ClientInfo describes
    the other parties behind it, never the Hub itself."""
    if not any(r.get("role") == Role.HUB.value for r in party.roles or ()):
        raise not_found(f"hubclientinfo {cc}/{pid}: only a Hub pushes ClientInfo, and you registered no HUB role")
