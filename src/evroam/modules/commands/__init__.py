"""Commands (mod_commands.asciidoc): the eMSP asks, the CPO answers at once and
posts the result later to the eMSP's response_url (sync/tracker.py)."""

from evroam.module import Module
from evroam.modules.commands.owner import ANSWERS
from evroam.ocpi.common import Role
from evroam.ocpi.versions import InterfaceRole
from evroam.modules.commands import routing

MODULE = Module("commands", {Role.CPO: InterfaceRole.RECEIVER, Role.EMSP: InterfaceRole.SENDER}, answers=ANSWERS,
                callback_fields=("response_url",), route=routing.route, learn=routing.learn)

from evroam.modules.commands import client, owner, receiver, sender

__all__ = ["MODULE", "client", "owner", "receiver", "sender"]
