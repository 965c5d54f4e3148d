"""Structured (one JSON object per line) logging for the receiver, bounded whatever a client sends.

Log records carry ids, types, outcomes and timings only: never message text, phone numbers or
secrets. Extra fields are passed with `extra={"fields": {...}}`; every field is cut to
`FIELD_LIMIT` characters (an attacker chooses ids and types), and an exception's traceback is kept,
cut to `TRACEBACK_LIMIT`, so an unexpected 500 can be diagnosed from the log alone.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

FIELD_LIMIT = 200
TRACEBACK_LIMIT = 4000


def bounded(value: Any, limit: int = FIELD_LIMIT) -> Any:
    """`value` as logged: numbers, booleans and None as they are, anything else as text of at most
    `limit` characters (longer text keeps its head and says how long it was)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text)} chars]"


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...fields, "exc"?, "traceback"?}`, every field bounded."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": bounded(record.getMessage(), 1000),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({bounded(str(k), 64): bounded(v) for k, v in fields.items()})
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            out["exc"] = bounded(f"{type(exc).__name__}: {first_line}")
            # Frames only (file, line, function, source line): the exception's message may quote
            # payload text, the code around it does not.
            frames = "".join(traceback.format_tb(record.exc_info[2]))
            out["traceback"] = frames[-TRACEBACK_LIMIT:]
        return json.dumps(out, default=str)


def logconfig_dict(level: str = "INFO") -> dict[str, Any]:
    """A logging.config dict for the server and its workers: JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "webhook_receiver.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "_granian": {"level": level, "handlers": ["stderr"], "propagate": False},
            "granian.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        },
    }
