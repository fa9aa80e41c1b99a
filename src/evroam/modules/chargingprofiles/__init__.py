"""ChargingProfiles (mod_charging_profiles.asciidoc): smart charging requests
for a running session, answered asynchronously like Commands."""

from evroam.module import Module
from evroam.ocpi.common import Role
from evroam.ocpi.versions import InterfaceRole

MODULE = Module("chargingprofiles", {Role.CPO: InterfaceRole.RECEIVER, Role.EMSP: InterfaceRole.SENDER})

from evroam.modules.chargingprofiles import owner, receiver, sender  # noqa: E402  (they use MODULE)

__all__ = ["MODULE", "owner", "receiver", "sender"]
