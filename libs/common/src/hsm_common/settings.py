"""Command-line flags that fall back to environment variables, so pods can be configured either way."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable
from typing import Any


def env_name(prefix: str, flag: str) -> str:
    """The variable behind a flag: ``--rescan-interval``, prefix HSM_AGENT → HSM_AGENT_RESCAN_INTERVAL."""
    return f"{prefix}_{flag.lstrip('-').replace('-', '_').upper()}"


def add_flag(
    parser: argparse.ArgumentParser,
    prefix: str,
    flag: str,
    *,
    default: Any = None,
    type: Callable[[str], Any] = str,
    help: str,
    required: bool = False,
) -> None:
    """Add flag to parser; its default comes from the environment variable named by env_name, if set."""
    variable = env_name(prefix, flag)
    raw = os.environ.get(variable)
    value = type(raw) if raw is not None else default
    parser.add_argument(
        flag,
        default=value,
        type=type,
        required=required and value is None,
        help=f"{help} (env {variable}; default: {value!r})",
    )


def default_of(config: type[Any], field: str) -> Any:
    """The default of a settings dataclass's field: flags take it from there, so it is written once."""
    for candidate in dataclasses.fields(config):
        if candidate.name != field:
            continue
        if candidate.default is not dataclasses.MISSING:
            return candidate.default
        if candidate.default_factory is not dataclasses.MISSING:
            return candidate.default_factory()
        raise ValueError(f"{config.__name__}.{field} has no default")
    raise ValueError(f"{config.__name__} has no field {field!r}")


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``90s``, ``5m``, ``1h30m`` or ``250ms``; a bare number means seconds."""
    text = text.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}: use e.g. 250ms, 30s, 5m, 1h30m")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)
