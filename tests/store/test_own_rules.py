"""The owner rules of sync/own.py, without a database: which of our changes
may be stored, and what kind of change each is."""

from __future__ import annotations

from datetime import timedelta

import pytest

from evroam.config import NodeConfig, RoleConfig
from evroam.modules import REGISTRY
from evroam.ocpi.common import Role
from evroam.ocpi.locations import Location
from evroam.store.objects import Stored
from evroam.sync.own import CREATED, UNCHANGED, UPDATED, Ours, Refused, change_kind, check
from tests.limits_support import evse, location

LOCATIONS, CDRS = REGISTRY["locations"], REGISTRY["cdrs"]


def ours(*roles: tuple[str, str, str], **settings: object) -> Ours:
    cfg = NodeConfig(home=None, public_url="http://x", roles=[  # type: ignore[arg-type]
        RoleConfig(Role(r), cc, pid, name=f"{r} {cc}/{pid}") for r, cc, pid in roles])
    for k, v in settings.items():
        setattr(cfg, k, v)
    return Ours.of(cfg)


def stored(obj: Location, **changes: object) -> Stored:
    doc = obj.to_json_bytes().decode()
    return Stored(1, changes.pop("data", doc), changes.pop("last_updated", obj.last_updated), False, None, None)


def test_an_object_must_be_under_one_of_our_owning_roles():
    loc = Location.from_wire(location("L1"))
    check(loc, LOCATIONS, ours(("CPO", "nl", "cpo")))  # CiStrings: case does not matter
    check(loc, LOCATIONS, ours(("HUB", "NL", "CPO")))  # a Hub may own any module's data
    with pytest.raises(Refused, match=r"NL/CPO is not one of this node's CPO roles \(DE/EMS\)$"):
        check(loc, LOCATIONS, ours(("EMSP", "NL", "CPO"), ("CPO", "DE", "EMS")))
    check(loc, LOCATIONS, Ours())  # roles unknown: judged against what is stored (change_kind)


def test_the_module_rules_apply_with_the_node_settings():
    twins = Location.from_wire(location("L1", evses=[evse("E1"), evse("e1")]))
    with pytest.raises(Refused, match="evses.1.uid: 'e1' appears twice in this Location") as exc:
        check(twins, LOCATIONS, ours(("CPO", "NL", "CPO")))
    assert not exc.value.conflict
    two = Location.from_wire(location("L1", evses=[evse("E1"), evse("E2")]))
    check(two, LOCATIONS, ours(("CPO", "NL", "CPO")))
    with pytest.raises(Refused, match=r"^evses: 2 EVSEs; this node takes at most 1 per Location"):
        check(two, LOCATIONS, ours(("CPO", "NL", "CPO"), max_evses_per_location=1))


def test_change_kinds():
    us = ours(("CPO", "NL", "CPO"))
    loc = Location.from_wire(location("L1"))
    data = loc.to_json_bytes().decode()
    assert change_kind(LOCATIONS, loc, data, None, us) == CREATED
    assert change_kind(LOCATIONS, loc, data, stored(loc), us) == UNCHANGED
    assert change_kind(LOCATIONS, loc, data, stored(loc, data="{}"), us) == UPDATED
    newer = stored(loc, data="{}", last_updated=loc.last_updated + timedelta(seconds=1))
    with pytest.raises(Refused, match="is older than the stored version") as exc:
        change_kind(LOCATIONS, loc, data, newer, us)
    assert exc.value.conflict
    # Without our roles nothing new is created; a stored object still changes.
    with pytest.raises(Refused, match="cannot be created"):
        change_kind(LOCATIONS, loc, data, None, Ours())
    assert change_kind(LOCATIONS, loc, data, stored(loc, data="{}"), Ours()) == UPDATED


def test_an_immutable_object_never_changes():
    assert CDRS.immutable
    loc = Location.from_wire(location("L1"))  # any object: the rule is the module's flag
    data = loc.to_json_bytes().decode()
    assert change_kind(CDRS, loc, data, stored(loc), ours()) == UNCHANGED
    with pytest.raises(Refused, match="exists already and differs") as exc:
        change_kind(CDRS, loc, data, stored(loc, data="{}"), ours())
    assert exc.value.conflict
