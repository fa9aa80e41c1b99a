"""HubClientInfo (mod_hub_client_info.asciidoc): a Hub tells the parties
connected to it which other parties are CONNECTED, OFFLINE, PLANNED or
SUSPENDED.

The Hub owns the data (Sender: GET the list); every party connected to a
Hub implements the Receiver (GET and PUT at {country_code}/{party_id}).
A ClientInfo is keyed by the country_code/party_id it describes, so its
object id is its party_id.
"""

from evroam.module import Module, OwnerRules
from evroam.ocpi.common import Role
from evroam.ocpi.hubclientinfo import ClientInfo
from evroam.ocpi.versions import InterfaceRole
from evroam.modules.hubclientinfo.rules import require_hub

_RECEIVER_ROLES = (Role.CPO, Role.EMSP, Role.NAP, Role.NSP, Role.OTHER, Role.SCSP)

MODULE = Module(
    "hubclientinfo",
    {Role.HUB: InterfaceRole.SENDER, **{r: InterfaceRole.RECEIVER for r in _RECEIVER_ROLES}},
    model=ClientInfo, owner=Role.HUB, id_field="party_id", id_in_url=False,
    may_write=require_hub, owner_rules=OwnerRules(describes_others=True), routed=False,
)

from evroam.modules.hubclientinfo import owner, receiver, sender

__all__ = ["MODULE", "owner", "receiver", "sender"]
