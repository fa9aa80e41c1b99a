"""Sessions (mod_sessions.asciidoc): charging sessions, CPO to eMSP.

A PATCH appends charging_periods (periods.py, the one place of that rule);
owner.py is the CPO's start/update/stop/issue_cdr.
"""

from evroam.module import Module, addressee_by_token, ref_by_token
from evroam.ocpi.common import Role
from evroam.ocpi.sessions import Session
from evroam.ocpi.versions import InterfaceRole
from evroam.modules.sessions.periods import APPENDED, append_periods
from evroam.modules.sessions import routing

MODULE = Module(
    "sessions",
    {Role.CPO: InterfaceRole.SENDER, Role.EMSP: InterfaceRole.RECEIVER},
    model=Session, owner=Role.CPO, patchable=True,
    appended=APPENDED, merge=append_periods, ref_of=ref_by_token, addressee=addressee_by_token,
    # The Sessions Sender requires date_from (mod_sessions, "GET Method").
    pull_params={"date_from": "1970-01-01T00:00:00Z"},
    route=routing.route, learn=routing.learn,
)

from evroam.modules.sessions import owner, receiver, sender

__all__ = ["MODULE", "owner", "receiver", "sender"]
