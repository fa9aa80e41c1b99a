"""Bulk import of our own objects from OCPI JSON files (`evroam data import`).

A file holds one object or a list. The whole file is validated first and then
written in one transaction through `sync.publish.publish_many` (publish() in
bulk), so a file either lands completely (and its changes are queued for
partners like any other) or not at all.

The same per-object rules serve the admin API (admin/objects.py):
- an object sits under one of our own roles that owns the module;
- the same document again is a no-op (nothing is pushed);
- a version older than the stored one is refused, since receivers keep the
  newer one and would silently diverge from us;
- a CDR is never changed once stored (credit CDRs exist for that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.config import RoleConfig
from evroam.ocpi.base import NotJson, OcpiModel, error_text, load_json
from evroam.ocpi.common import Role
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.module import REGISTRY
from evroam.module import Module
from evroam.ocpi.types import ci_key, format_datetime
from evroam.store import parties as party_repo
from evroam.store.objects import ObjectKey, Stored
from evroam.store.tables import OURS, objects
from evroam.modules.locations.rules import LocationLimits, refusal
from evroam.sync.publish import object_key, publish_many

IMPORTABLE = ("locations", "tariffs", "tokens", "sessions", "cdrs")
_CHUNK = 500
_BATCH = 500  # objects per bulk statement (and per progress step)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


class Refused(ValueError):
    """An object that is valid OCPI but may not be published as given."""


def own_keys(roles: Iterable[RoleConfig], module: Module) -> set[tuple[str, str]]:
    """(COUNTRY, PARTY) of our roles that own this module's data (a Hub may too)."""
    return {(ci_key(r.country_code), ci_key(r.party_id)) for r in roles if r.role in (module.owner, Role.HUB)}


def check_own(obj: OcpiModel, module: Module, keys: set[tuple[str, str]]) -> None:
    if (ci_key(obj.country_code), ci_key(obj.party_id)) not in keys:
        ours = ", ".join(f"{cc}/{pid}" for cc, pid in sorted(keys)) or "none"
        raise Refused(f"country_code/party_id: {obj.country_code}/{obj.party_id} is not one of this node's "
                      f"{module.owner.value} roles ({ours})")


def change_kind(module: Module, obj: OcpiModel, data: str, stored: Stored | None) -> str:
    """CREATED, UPDATED or UNCHANGED; raises Refused for an unpublishable change."""
    if stored is None or stored.stale:  # stale: one we deleted, published again
        return CREATED
    if stored.data == data:
        return UNCHANGED
    if module.immutable:
        raise Refused(f"{module.id[:-1]} {getattr(obj, module.id_field)!r} exists already and differs; "
                      "CDRs never change once sent (issue a credit CDR instead)")
    if obj.last_updated < stored.last_updated:
        raise Refused(f"last_updated: {format_datetime(obj.last_updated)} is older than the stored version "
                      f"({format_datetime(stored.last_updated)}); partners would keep theirs")
    return UPDATED


def _tuple(key: ObjectKey) -> tuple[str, str, str, str]:
    return key.cc, key.pid, key.oid, key.type


async def existing(conn: AsyncConnection, module: Module, keys: Sequence[ObjectKey]) -> dict[tuple, Stored]:
    """Our stored objects for these keys, in a few queries rather than one each."""
    out: dict[tuple, Stored] = {}
    oids = sorted({k.oid for k in keys})
    for i in range(0, len(oids), _CHUNK):
        rows = (await conn.execute(sa.select(
            objects.c.id, objects.c.data, objects.c.last_updated, objects.c.stale, objects.c.status,
            objects.c.note, objects.c.cc_key, objects.c.pid_key, objects.c.oid_key, objects.c.type_key,
        ).where(objects.c.module == module.id, objects.c.owner_id == OURS,
                objects.c.oid_key.in_(oids[i:i + _CHUNK])))).all()
        for r in rows:
            out[(r.cc_key, r.pid_key, r.oid_key, r.type_key)] = Stored(r.id, r.data, r.last_updated, r.stale,
                                                                      r.status, r.note)
    return out


@dataclass(slots=True)
class FileReport:
    path: Path
    objects: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def load_file(path: Path, module: Module, keys: set[tuple[str, str]],
              limits: LocationLimits = LocationLimits()) -> tuple[list[OcpiModel], list[str]]:
    """Every object of a file, validated; or the errors, each naming file and index."""
    try:
        doc = load_json(path.read_bytes())
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc.strerror or exc}"]
    except NotJson as exc:
        return [], [f"{path}: not valid JSON: {exc}"]
    items = doc if isinstance(doc, list) else [doc]
    objs: list[OcpiModel] = []
    errors: list[str] = []
    seen: dict[tuple, int] = {}
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: not a JSON object")
            continue
        try:
            obj = module.model.from_wire(item)
            check_own(obj, module, keys)
            if module is LOCATIONS:
                why = refusal(obj, limits)
                if why:
                    raise Refused(why)
        except ValidationError as exc:
            errors.append(f"{where}: {error_text(exc)}")
            continue
        except Refused as exc:
            errors.append(f"{where}: {exc}")
            continue
        k = _tuple(object_key(module, obj))
        if k in seen:
            errors.append(f"{where}: same object as [{seen[k]}] ({'/'.join(k[:3])})")
            continue
        seen[k] = i
        objs.append(obj)
    return objs, errors


async def write_file(engine: AsyncEngine, module: Module, path: Path, objs: list[OcpiModel],
                     report: FileReport, on_written: Callable[[int], None] | None = None) -> None:
    """One transaction for the whole file: all of it, or (on any refusal) none."""
    datas = [o.to_json_bytes().decode() for o in objs]
    keys = [object_key(module, o) for o in objs]
    async with engine.begin() as conn:
        stored = await existing(conn, module, keys)
        kinds = []
        for i, (obj, data, key) in enumerate(zip(objs, datas, keys, strict=True)):
            try:
                kinds.append(change_kind(module, obj, data, stored.get(_tuple(key))))
            except Refused as exc:
                report.errors.append(f"{path}[{i}]: {exc}")
        if report.errors:
            return
        receivers = await party_repo.list_all(conn)  # once per file, not once per object
        for start in range(0, len(objs), _BATCH):
            batch = [(o, k) for o, k in zip(objs[start:start + _BATCH], kinds[start:start + _BATCH], strict=True)]
            changed = [o for o, k in batch if k != UNCHANGED]
            if changed:
                await publish_many(conn, module, changed, receivers=receivers)
            for _, kind in batch:
                setattr(report, kind, getattr(report, kind) + 1)
            if on_written is not None:
                on_written(len(batch))


async def import_files(engine: AsyncEngine, module_id: str, paths: Sequence[Path], roles: Iterable[RoleConfig], *,
                       on_loaded: Callable[[Path, int], None] | None = None,
                       on_written: Callable[[int], None] | None = None,
                       limits: LocationLimits = LocationLimits()) -> list[FileReport]:
    """Import each file on its own: a failed file leaves nothing behind and
    does not stop the others. `on_loaded(path, n)` and `on_written(n)` drive a
    progress display."""
    if module_id not in IMPORTABLE:
        raise ValueError(f"unknown module {module_id!r}; one of {', '.join(IMPORTABLE)}")
    module = REGISTRY.objects()[module_id]
    keys = own_keys(roles, module)
    reports = []
    for path in paths:
        report = FileReport(path)
        reports.append(report)
        objs, report.errors = load_file(path, module, keys, limits)
        report.objects = len(objs) + len(report.errors)
        if on_loaded is not None:
            on_loaded(path, report.objects)
        if not report.errors:
            try:
                await write_file(engine, module, path, objs, report, on_written)
            except IntegrityError:
                # Another writer created one of these objects meanwhile; the
                # transaction is rolled back, so rerunning the import is safe.
                report.errors.append(f"{path}: changed concurrently by another writer; nothing written, "
                                     "import it again")
        if report.errors:
            if on_written is not None:
                on_written(report.objects)  # nothing of it written: the file is done with
            report.created = report.updated = report.unchanged = 0
    return reports
