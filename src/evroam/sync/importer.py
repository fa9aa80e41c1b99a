"""Bulk import of our own objects from OCPI JSON files (`evroam data import`).

A file holds one object or a list. The whole file is validated first and then
written in one transaction through `sync.own.write_many`, under the same
rules as every other change of ours (sync/own.py), so a file either lands
completely (and its changes are queued for partners like any other) or not
at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.config import NodeConfig, RoleConfig
from evroam.module import REGISTRY, Module
from evroam.ocpi.base import NotJson, OcpiModel, error_text, load_json
from evroam.store.objects import object_key
from evroam.sync import own
from evroam.sync.own import Ours, Refused, RefusedMany


def importable() -> tuple[str, ...]:
    """The modules whose objects we own and can import: those that store objects."""
    return tuple(m.id for m in REGISTRY.objects().values() if m.owner is not None)


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


def load_file(path: Path, module: Module, ours: Ours) -> tuple[list[OcpiModel], list[str]]:
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
            own.check(obj, module, ours)
        except ValidationError as exc:
            errors.append(f"{where}: {error_text(exc)}")
            continue
        except Refused as exc:
            errors.append(f"{where}: {exc}")
            continue
        key = object_key(module, obj)
        k = (key.cc, key.pid, key.oid, key.type)
        if k in seen:
            errors.append(f"{where}: same object as [{seen[k]}] ({'/'.join(k[:3])})")
            continue
        seen[k] = i
        objs.append(obj)
    return objs, errors


async def write_file(engine: AsyncEngine, module: Module, path: Path, objs: list[OcpiModel], ours: Ours,
                     report: FileReport, on_written: Callable[[int], None] | None = None) -> None:
    """One transaction for the whole file: all of it, or (on any refusal) none."""
    def written(kinds: list[str]) -> None:
        for kind in kinds:
            setattr(report, kind, getattr(report, kind) + 1)
        if on_written is not None:
            on_written(len(kinds))

    try:
        async with own.changing(engine, module, *(getattr(o, module.id_field) for o in objs)) as conn:
            await own.write_many(conn, module, objs, ours, on_batch=written)
    except RefusedMany as exc:
        report.errors.extend(f"{path}[{i}]: {why}" for i, why in exc.refusals)


async def import_files(engine: AsyncEngine, module_id: str, paths: Sequence[Path], roles: Iterable[RoleConfig], *,
                       on_loaded: Callable[[Path, int], None] | None = None,
                       on_written: Callable[[int], None] | None = None,
                       config: NodeConfig | None = None) -> list[FileReport]:
    """Import each file on its own: a failed file leaves nothing behind and
    does not stop the others. `config`: the node's, for the module rules'
    settings (e.g. Location limits; None: their defaults). `on_loaded(path, n)`
    and `on_written(n)` drive a progress display."""
    if module_id not in importable():
        raise ValueError(f"unknown module {module_id!r}; one of {', '.join(importable())}")
    module = REGISTRY.objects()[module_id]
    ours = Ours(tuple(roles), config)
    reports = []
    for path in paths:
        report = FileReport(path)
        reports.append(report)
        objs, report.errors = load_file(path, module, ours)
        report.objects = len(objs) + len(report.errors)
        if on_loaded is not None:
            on_loaded(path, report.objects)
        if not report.errors:
            try:
                await write_file(engine, module, path, objs, ours, report, on_written)
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
