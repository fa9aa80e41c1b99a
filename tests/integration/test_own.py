"""The one path for our own objects (sync/own.py): Node.publish follows the
rules the admin API follows, and the two write the same rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from evroam.node import Node
from evroam.ocpi.locations import Location
from evroam.store.tables import objects, outbox
from evroam.sync.own import Refused
from tests.limits_support import ADMIN_TOKEN, CPO, EMSP, T1, call, evse, location

_OBJECT = (objects.c.module, objects.c.owner_id, objects.c.cc_key, objects.c.pid_key, objects.c.oid_key,
           objects.c.type_key, objects.c.data, objects.c.last_updated, objects.c.stale, objects.c.ref_key,
           objects.c.status, objects.c.note)
# Not the ids and times, which differ between two nodes by nature.
_DELIVERY = (outbox.c.module, outbox.c.method, outbox.c.patch, outbox.c.sub_path, outbox.c.seq, outbox.c.status,
             outbox.c.attempts)


async def rows(node: Node) -> tuple[list[tuple], list[tuple]]:
    async with node.engine.connect() as conn:
        objs = (await conn.execute(sa.select(*_OBJECT).order_by(objects.c.id))).all()
        deliveries = (await conn.execute(sa.select(*_DELIVERY).order_by(outbox.c.id))).all()
    return [tuple(r) for r in objs], [tuple(r) for r in deliveries]


async def cpo_with_emsp(cluster, name: str) -> Node:
    """A CPO whose eMSP receives Locations; nothing is delivered (no workers),
    so its outbox rows stay as queued."""
    cpo = await cluster.node(f"cpo-{name}", CPO, admin_token=ADMIN_TOKEN, run_workers=False)
    emsp = await cluster.node(f"emsp-{name}", EMSP)
    token_a, versions_url = await cpo.handshake.invite("emsp")
    await emsp.handshake.register(versions_url, token_a)
    return cpo


async def admin_put(node: Node, doc: dict) -> tuple[int, dict]:
    return await call("PUT", f"{node.config.public_url}/admin/locations/{doc['id']}", ADMIN_TOKEN, body=doc,
                      bearer=True)


async def test_publish_refuses_what_the_admin_api_refuses(cluster):
    cpo = await cpo_with_emsp(cluster, "a")
    foreign = location("L1", country_code="BE")
    twins = location("L2", evses=[evse("E1"), evse("e1")])
    for doc, why in ((foreign, "country_code/party_id: BE/CPO is not one of this node's CPO roles (NL/CPO)"),
                     (twins, "evses.1.uid: 'e1' appears twice in this Location")):
        with pytest.raises(Refused, match=r"^" + why.replace("(", r"\(").replace(")", r"\)") + "$") as exc:
            await cpo.publish("locations", Location.from_wire(doc))
        assert not exc.value.conflict
        status, body = await admin_put(cpo, doc)
        assert (status, body["status_code"], body["status_message"]) == (400, 2001, why)
    assert await rows(cpo) == ([], [])
    # An older version than the stored one: a conflict, 409 from the admin API.
    assert await cpo.publish("locations", Location.from_wire(location("L3", last_updated=T1))) is True
    before = await rows(cpo)
    with pytest.raises(Refused, match="is older than the stored version") as exc:
        await cpo.publish("locations", Location.from_wire(location("L3", name="Old")))
    assert exc.value.conflict
    status, body = await admin_put(cpo, location("L3", name="Old"))
    assert (status, body["status_code"]) == (409, 2000)
    assert await rows(cpo) == before


async def test_admin_put_and_publish_write_the_same_rows(cluster):
    by_admin, by_publish = await cpo_with_emsp(cluster, "a"), await cpo_with_emsp(cluster, "b")
    first, changed = location("L1"), location("L1", name="Main St garage", last_updated=T1)
    assert (await admin_put(by_admin, first))[0] == 201
    assert await by_publish.publish("locations", Location.from_wire(first)) is True
    stored, queued = await rows(by_admin)
    assert (len(stored), [d[:2] for d in queued]) == (1, [("locations", "PUT")])
    assert await rows(by_publish) == (stored, queued)
    # The same document again pushes nothing; a change folds into the pending PUT.
    assert (await admin_put(by_admin, first))[1]["status_message"] == "unchanged"
    assert await by_publish.publish("locations", Location.from_wire(first)) is False
    assert await rows(by_publish) == (stored, queued)
    assert (await admin_put(by_admin, changed))[0] == 200
    assert await by_publish.publish("locations", Location.from_wire(changed)) is False
    stored, queued = await rows(by_admin)
    assert [d[:5] for d in queued] == [("locations", "PUT", None, None, 2)]
    assert await rows(by_publish) == (stored, queued)
