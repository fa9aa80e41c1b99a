"""The base of every OCPI object model."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import from_json, to_json


class OcpiModel(BaseModel):
    """Every OCPI object.

    Unknown fields are tolerated and dropped: partners on newer versions (2.3.0
    requires the tolerance) or with custom fields send them. When the caller
    passes a validation context with an `unknown` set, the dotted names of the
    dropped fields are collected there so they can be logged once per partner.
    """

    model_config = ConfigDict(extra="ignore", frozen=False, validate_default=False, use_enum_values=False)

    _known: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        names: set[str] = set()
        for name, field in cls.model_fields.items():
            names.add(field.alias or name)
        cls._known = frozenset(names)

    @model_validator(mode="before")
    @classmethod
    def _note_unknown_fields(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context:
            sink = info.context.get("unknown")
            if sink is not None:
                for key in data.keys() - cls._known:
                    sink.add(f"{cls.__name__}.{key}")
        return data

    # --- wire form ---------------------------------------------------------------

    def to_json_bytes(self) -> bytes:
        """The wire form: absent optional fields are left out, never `null`."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_wire(cls, data: bytes | str | dict[str, Any], unknown: set[str] | None = None) -> Self:
        ctx = {"unknown": unknown} if unknown is not None else None
        if isinstance(data, bytes | str):
            return cls.model_validate_json(data, context=ctx)
        return cls.model_validate(data, context=ctx)


class NotJson(ValueError):
    """Bytes that are not one JSON document in UTF-8."""


_BOM = b"\xef\xbb\xbf"


def load_json(raw: bytes | str) -> Any:
    """One JSON document, parsed by pydantic-core as object bodies are, so a
    PATCH and a PUT judge the same bytes alike. Its nesting limit (200 levels,
    far beyond any OCPI object) keeps a hostile document from exhausting the
    stack: the stdlib parser raised RecursionError at ~1,000 levels, which no
    caller expected. A leading UTF-8 byte order mark is ignored (RFC 8259 §8.1).
    """
    if isinstance(raw, bytes):
        if raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotJson(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        return from_json(raw)
    except ValueError as exc:
        raise NotJson(str(exc)) from None


def dumps(value: Any) -> bytes:
    """Serialise OCPI models (or lists/dicts of them) once, with pydantic-core."""
    return to_json(value, exclude_none=True)


def error_text(exc: ValidationError) -> str:
    """A one-line message that names each field that failed."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
