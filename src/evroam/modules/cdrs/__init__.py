"""CDRs (mod_cdrs.asciidoc): charge detail records, POSTed once and never changed."""

from evroam.module import Module, addressee_by_token, ref_by_token
from evroam.ocpi.cdrs import CDR
from evroam.ocpi.common import Role
from evroam.ocpi.versions import InterfaceRole
from evroam.modules.cdrs.rules import verdict
from evroam.modules.cdrs import routing

MODULE = Module(
    "cdrs",
    {Role.CPO: InterfaceRole.SENDER, Role.EMSP: InterfaceRole.RECEIVER},
    model=CDR, owner=Role.CPO, immutable=True, ref_of=ref_by_token, addressee=addressee_by_token, judge=verdict, route=routing.route,
)

from evroam.modules.cdrs import owner, receiver, sender

__all__ = ["MODULE", "owner", "receiver", "sender"]
