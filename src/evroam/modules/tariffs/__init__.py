"""Tariffs (mod_tariffs.asciidoc): the CPO's prices. The only module whose Receiver has DELETE."""

from evroam.module import Module
from evroam.ocpi.common import Role
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.versions import InterfaceRole

MODULE = Module(
    "tariffs",
    {Role.CPO: InterfaceRole.SENDER, Role.EMSP: InterfaceRole.RECEIVER},
    model=Tariff, owner=Role.CPO, deletable=True, broadcast=True,
)

from evroam.modules.tariffs import owner, receiver, sender

__all__ = ["MODULE", "owner", "receiver", "sender"]
