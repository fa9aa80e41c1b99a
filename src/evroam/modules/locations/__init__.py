"""Locations (mod_locations.asciidoc): the CPO's charge points.

sender.py serves our Locations (CPO), receiver.py takes a CPO's (eMSP);
owner.py changes our own (EVSE status); merge.py and rules.py hold the
per-level merge and the limits the Receiver applies.
"""

from evroam.module import Module
from evroam.ocpi.common import Role
from evroam.ocpi.locations import Location
from evroam.ocpi.versions import InterfaceRole
from evroam.modules.locations import routing

MODULE = Module(
    "locations",
    {Role.CPO: InterfaceRole.SENDER, Role.EMSP: InterfaceRole.RECEIVER},
    model=Location, owner=Role.CPO, patchable=True, fast_get_one=True, broadcast=True,
    route=routing.route,
)

from evroam.modules.locations import owner, receiver, sender

MODULE.owner_rules = owner.RULES
MODULE.message_merger = receiver.message_merger

__all__ = ["MODULE", "owner", "receiver", "sender"]
