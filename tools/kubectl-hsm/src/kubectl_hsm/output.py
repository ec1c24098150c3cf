"""Printing results: tables for people, JSON or YAML for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import yaml


def document(value: Any, fmt: str) -> str:
    """value as JSON or YAML text."""
    if fmt == "yaml":
        return str(yaml.safe_dump(value, sort_keys=False))
    return json.dumps(value, indent=2) + "\n"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain column-aligned table like kubectl get prints."""
    cells = [list(headers)] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in cells
    )


def size(count: int) -> str:
    """A byte count the way kubectl shows quantities: 512, 64Ki, 1.5Mi."""
    if count < 1024:
        return str(count)
    value, unit = count / 1024, "Ki"
    for bigger in ("Mi", "Gi"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f}".removesuffix(".0") + unit


def write(text: str) -> None:
    sys.stdout.write(text)


def write_bytes(value: bytes) -> None:
    """Raw bytes on stdout (binary-safe --key output)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(value)
    sys.stdout.buffer.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
