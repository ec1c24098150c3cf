"""Waiting for a condition in the manager's tests: polled, with a timeout, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
    """Poll condition every 20 ms until it returns something truthy (returned); fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return result
