"""The registry: every OCPI module evroam implements, one line each.

The routers and version details (server/app.py), routing headers, the hook
events (events.py), what `data import` accepts, pulls and what the admin API
serves all derive from this list. Adding a module is a new package under
`evroam/modules/` and one line here.
"""

from __future__ import annotations

from evroam.module import REGISTRY, Module
from evroam.modules import (
    cdrs,
    chargingprofiles,
    commands,
    credentials,
    hubclientinfo,
    locations,
    sessions,
    tariffs,
    tokens,
    versions,
)

REGISTRY.add(versions)
REGISTRY.add(credentials)
REGISTRY.add(locations)
REGISTRY.add(tariffs)
REGISTRY.add(sessions)
REGISTRY.add(cdrs)
REGISTRY.add(tokens)
REGISTRY.add(commands)
REGISTRY.add(chargingprofiles)
REGISTRY.add(hubclientinfo)

__all__ = ["REGISTRY", "Module"]
