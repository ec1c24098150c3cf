"""Structured JSON logging: one line per event, sensitive fields redacted before they are written."""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from typing import Any, Final

#: Field names whose values never reach a log line, whatever their content.
SENSITIVE: Final = re.compile(r"(pin|password|passwd|secret_?value|token|private_?key|value|data)$", re.I)
REDACTED: Final = "[redacted]"

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """A copy of fields with every sensitive name's value replaced, nested dicts included."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if SENSITIVE.search(name):
            out[name] = REDACTED
        elif isinstance(value, dict):
            out[name] = redact(value)
        else:
            out[name] = value
    return out


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, event and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **redact(fields),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error_type"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def setup(level: str = "info", stream: Any = None) -> None:
    """Route the root logger to stream (stderr) as JSON lines at level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
