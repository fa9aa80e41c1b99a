"""ChargingProfiles (mod_charging_profiles.asciidoc): smart charging requests
for a running session, answered asynchronously like Commands (sync/tracker.py)."""

from evroam.module import Module
from evroam.modules.chargingprofiles.owner import ANSWERS
from evroam.ocpi.common import Role
from evroam.ocpi.versions import InterfaceRole
from evroam.modules.chargingprofiles import routing

MODULE = Module("chargingprofiles", {Role.CPO: InterfaceRole.RECEIVER, Role.EMSP: InterfaceRole.SENDER},
                answers=ANSWERS, callback_fields=("response_url",), route=routing.route, learn=routing.learn)

from evroam.modules.chargingprofiles import client, owner, receiver, sender

__all__ = ["MODULE", "client", "owner", "receiver", "sender"]
