"""The one format of the times stored with secrets: RFC 3339, UTC, microseconds."""

from __future__ import annotations

import datetime


def now() -> str:
    """The current time as secrets record it (``2026-12-02T10:00:00.123456Z``)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
