"""The hook events are catalogued in one place (evroam/modules/events.py)
and documented: each in its docstring's table and in docs/hooks.md."""

from __future__ import annotations

from pathlib import Path

from evroam.hooks import received
from evroam.modules import REGISTRY, events

DOC = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"


def _names() -> list[str]:
    return [f"{type(event).__name__}.{event.name}" for event in events.every_event()]


def _table(text: str, heading: str) -> str:
    """The table that follows `heading` in a Markdown text."""
    after = text[text.index(heading) + len(heading):]
    rows = after.lstrip("\n").splitlines()
    end = next((i for i, row in enumerate(rows) if not row.startswith("|")), len(rows))
    return "\n".join(rows[:end])


def test_every_event_is_in_the_catalogue_table() -> None:
    table = _table(events.__doc__ or "", "Register a hook with `@node.on(EVENT)`.\n")
    missing = [name for name in _names() if f"`{name}`" not in table]
    assert missing == []


def test_every_event_is_in_the_docs_table() -> None:
    table = _table(DOC.read_text(), "## Which hook fires in which process\n")
    missing = [name for name in _names() if f"`{name}`" not in table]
    assert missing == []


def test_every_object_module_has_a_received_event() -> None:
    keys = {event.value for event in events.Received}
    assert [m for m in REGISTRY.objects() if received(m) not in keys] == []


def test_event_keys_are_unique() -> None:
    values = [event.value for event in events.every_event()]
    assert len(values) == len(set(values))
