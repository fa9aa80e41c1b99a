"""Versions (version_information_endpoint.asciidoc): the versions list and our
2.2.1 version details, built from the registry."""

from evroam.module import Module

MODULE = Module("versions")

from evroam.modules.versions import owner, receiver, sender

__all__ = ["MODULE", "owner", "receiver", "sender"]
