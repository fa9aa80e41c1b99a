"""Credentials (credentials.asciidoc): registration, token rotation and
unregistration. Both sides implement it; handshake.py is our half of it."""

from evroam.module import Module

MODULE = Module("credentials")

from evroam.modules.credentials import handshake, owner, receiver, sender

__all__ = ["MODULE", "handshake", "owner", "receiver", "sender"]
