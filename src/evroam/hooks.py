"""Business hooks: plain decorated coroutines, as in the `ocpp` library.

    @node.on(CommandType.START_SESSION)
    async def start(command, handle): ...

    @node.on(Received.CDR)
    async def new_cdr(cdr, party): ...

Every event, when it fires, its hook's signature and what its return value
means: the one table in `evroam.modules.events`. This file is generic (it
names no module): an event is any string or enum whose value is its key, and
`received(module_id)` is the key of the event every object module fires once
an object a partner sent is stored.

A hook that raises is logged and does not undo what the protocol already did.

From the command line, hooks live in a module with a `setup(node)` function
that registers them (`evroam serve --hooks MODULE`, or `hooks = "MODULE"` in
evroam.toml); `load_setup` finds it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Hook = Callable[..., Awaitable[Any]]


def received(module_id: str) -> str:
    """The key of the event an object module fires when it has stored an
    object a partner pushed (or a pull brought): `Received.*` in modules/events.py."""
    return "received." + module_id


def _key(event: Any) -> str:
    return str(getattr(event, "value", event))


class Hooks:
    def __init__(self) -> None:
        self._hooks: dict[str, Hook] = {}
        # evroam's own reactions to an event, beside the operator's one hook
        # (a party behind a Hub: a CONNECTED ClientInfo schedules a pull).
        self._listeners: dict[str, list[Hook]] = {}

    def listen(self, event: Any, fn: Hook) -> None:
        self._listeners.setdefault(_key(event), []).append(fn)

    def on(self, event: Any) -> Callable[[Hook], Hook]:
        def register(fn: Hook) -> Hook:
            self._hooks[_key(event)] = fn
            return fn

        return register

    def names(self) -> list[str]:
        return sorted(self._hooks)

    def get(self, event: Any) -> Hook | None:
        return self._hooks.get(_key(event))

    async def fire(self, event: Any, *args: Any) -> Any:
        """Call a notification hook, if any; its failure is logged, not raised."""
        for listener in self._listeners.get(_key(event), ()):
            try:
                await listener(*args)
            except Exception:
                log.exception("hook.listener_failed", hook=_key(event))
        fn = self.get(event)
        if fn is None:
            return None
        try:
            return await fn(*args)
        except Exception:
            log.exception("hook.failed", hook=_key(event))
            return None


class HookLoadError(Exception):
    """A hooks module that cannot be used; the message is one line for the operator."""


def load_setup(spec: str, *, base: Path | None = None) -> Callable[[Any], Any]:
    """The `setup(node)` function of a hooks module (`evroam serve --hooks`).

    `spec` is a dotted module name, importable from the current directory,
    `base` or sys.path, or the path of a .py file (relative to `base` when
    given, else to the current directory).
    """
    try:
        module = _import_file(spec, base) if spec.endswith(".py") else _import_name(spec, base)
    except HookLoadError:
        raise
    except Exception as exc:
        raise HookLoadError(f"hooks module {spec!r} failed to import: {type(exc).__name__}: {exc}") from exc
    setup = getattr(module, "setup", None)
    if not callable(setup):
        raise HookLoadError(f"hooks module {spec!r} has no setup(node) function")
    return setup


def _import_name(name: str, base: Path | None) -> ModuleType:
    # A console script's sys.path holds neither the current directory nor the
    # node's home, where an operator's module naturally lives (uvicorn adds
    # the current directory for the same reason).
    for folder in (base, Path.cwd()):
        if folder is not None and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise HookLoadError(f"hooks module {name!r} not found (a dotted module name, or a path "
                                "ending in .py)") from None
        raise


def _import_file(path: str, base: Path | None) -> ModuleType:
    file = Path(path)
    if not file.is_absolute():
        file = (base or Path.cwd()) / file
    if not file.is_file():
        raise HookLoadError(f"hooks file {str(file)!r} not found")
    name = f"evroam_hooks_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise HookLoadError(f"hooks file {str(file)!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
