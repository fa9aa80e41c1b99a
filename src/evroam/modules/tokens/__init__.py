"""Tokens (mod_tokens.asciidoc): the eMSP's cards and apps, keyed by uid and type.

client.py is the CPO's real-time authorization (POST {uid}/authorize).
"""

from evroam.module import Module
from evroam.ocpi.common import Role
from evroam.ocpi.tokens import Token
from evroam.ocpi.versions import InterfaceRole
from evroam.modules.tokens import routing

MODULE = Module(
    "tokens",
    {Role.CPO: InterfaceRole.RECEIVER, Role.EMSP: InterfaceRole.SENDER},
    model=Token, owner=Role.EMSP, id_field="uid", typed=True, patchable=True, broadcast=True, route=routing.route,
)

from evroam.modules.tokens import client, owner, receiver, sender

__all__ = ["MODULE", "client", "owner", "receiver", "sender"]
