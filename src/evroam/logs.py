"""Logging of a serving process (`serve`, `worker`, `demo`): one JSON object
per line on stderr, from our structlog events and from every library that
logs through the standard library (alembic, uvicorn, asyncio, aiohttp,
sqlalchemy, warnings) alike, so a log shipper needs one parser."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, date, datetime
from typing import IO, Any

import structlog

from evroam.ocpi.types import format_datetime

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
          "critical": logging.CRITICAL}


def parse_level(name: str) -> int:
    """A level name (any case) as a logging level; ValueError names the choices."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; one of {', '.join(LEVELS)}") from None


def _timestamp(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # UTC with `Z`, as every timestamp we emit on the wire; milliseconds, in
    # a fixed width so that lines sort and align as text.
    event_dict["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return event_dict


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


# What every line carries, whether it came from structlog or a stdlib logger.
_COMMON = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.stdlib.add_logger_name,
    _timestamp,
]


def _head_first(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # The same four keys lead every line, for people reading it raw.
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "logger", "event") if k in event_dict}
    return {**head, **event_dict}


def configure(level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Route structlog and the standard library's root logger through one
    JSON formatter on `stream` (stderr), at `level`. Safe to call again (the
    level may change once the config file is read)."""
    structlog.configure(
        processors=[*_COMMON, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_COMMON,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _head_first,
            structlog.processors.JSONRenderer(json.dumps, default=_json_default, ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Python's warnings go to stderr as plain text unless captured.
    logging.captureWarnings(True)
