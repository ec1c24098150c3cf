"""The manager's command-line flags: each falls back to an HSM_MANAGER_* variable, so pods can use either."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hsm_common import settings

PREFIX = "HSM_MANAGER"


def add(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    default: Any,
    help: str,
    type: Callable[[str], Any] = str,
) -> None:
    """Add flag to parser; the variable HSM_MANAGER_<FLAG>, when set, replaces default."""
    settings.add_flag(parser, PREFIX, flag, default=default, type=type, help=help)


def boolean(text: str) -> bool:
    """A yes/no flag's value: 1, true, yes and on (any case) mean yes."""
    return text.strip().lower() in ("1", "true", "yes", "on")
